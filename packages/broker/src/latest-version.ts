import { createHash } from 'node:crypto';

/**
 * The compare-and-set behind `Broker.setLatestIfNewer` on Redis, one key only (so it runs on a
 * Redis Cluster at the key's slot): KEYS[1] the key, ARGV[1] the value, ARGV[2] its version. The
 * stored value stays when it is JSON with a numeric `version` at least ARGV[2]; anything else
 * (no value, not JSON, no numeric `version`) is replaced. Replies 1 when it wrote, 0 when not.
 */
export const SET_IF_NEWER_SCRIPT = `
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' and type(decoded.version) == 'number'
    and decoded.version >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

export const SET_IF_NEWER_SHA = createHash('sha1').update(SET_IF_NEWER_SCRIPT).digest('hex');

/** The same rule in process: whether a value of `version` may replace `stored`. */
export function replacesStored(stored: string | undefined, version: number): boolean {
  if (stored === undefined) return true;
  let decoded: unknown;
  try {
    decoded = JSON.parse(stored);
  } catch {
    return true;
  }
  const storedVersion = (decoded as { version?: unknown } | null)?.version;
  return typeof storedVersion !== 'number' || storedVersion < version;
}

/**
 * Runs the script by its SHA (EVALSHA), loading it with EVAL when the server does not have it
 * yet (first use, a restarted Redis, a promoted replica).
 */
export async function runSetIfNewer(
  client: {
    evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
    eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  },
  key: string,
  value: string,
  version: number,
): Promise<boolean> {
  const options = { keys: [key], arguments: [value, String(version)] };
  try {
    return (await client.evalSha(SET_IF_NEWER_SHA, options)) === 1;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await client.eval(SET_IF_NEWER_SCRIPT, options)) === 1;
  }
}

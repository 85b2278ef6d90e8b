import type { HermesClient } from './hermes-client.ts';
import { PriceSourceError } from './price-source.ts';

const FEED_ID = /^(?:0x)?[0-9a-fA-F]{64}$/;
const MAX_CANDIDATES = 5;

export type FeedLookup = { found: true; id: string; symbol: string } | { found: false; candidates: string[] };

/**
 * Finds the `Crypto.<SYMBOL>/USD` feed through `GET /v2/price_feeds?query=<SYMBOL>&asset_type=crypto`.
 * Hermes matches `query` as a case-insensitive substring of each feed's `symbol` attribute
 * (`BTC` also finds `Crypto.WBTC/USD` and `Crypto.BTC/EUR`), so the answer is searched for the
 * exact symbol; when it is absent the near misses are returned to help whoever configures it.
 */
export async function lookupCryptoUsdFeed(
  client: HermesClient,
  symbol: string,
  signal?: AbortSignal,
): Promise<FeedLookup> {
  const body = await client.getJson(
    'v2/price_feeds',
    [
      ['query', symbol],
      ['asset_type', 'crypto'],
    ],
    signal,
  );
  if (!Array.isArray(body)) {
    throw new PriceSourceError(
      'source_bad_response',
      'Hermes answered /v2/price_feeds with something other than a list',
    );
  }
  const wanted = `Crypto.${symbol}/USD`.toLowerCase();
  const candidates: string[] = [];
  for (const entry of body as unknown[]) {
    const id = (entry as { id?: unknown } | null)?.id;
    const attributes = (entry as { attributes?: unknown } | null)?.attributes;
    const name = (attributes as { symbol?: unknown } | null | undefined)?.symbol;
    if (typeof name !== 'string') continue;
    if (name.toLowerCase() === wanted && typeof id === 'string' && FEED_ID.test(id)) {
      return { found: true, id: id.startsWith('0x') ? id : `0x${id}`, symbol: name };
    }
    if (candidates.length < MAX_CANDIDATES) candidates.push(name);
  }
  return { found: false, candidates };
}

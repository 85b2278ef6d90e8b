import { pino, symbols, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';

/** The logging surface every package depends on: a pino logger or anything shaped like one. */
export type Logger = Pick<PinoLogger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

/**
 * Paths that may hold secrets. pino replaces them before a line is written, so a token or a
 * password never reaches a log even when a whole request or message object is logged.
 */
const REDACT = [
  'token',
  'password',
  '*.token',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

interface LoggerOptions {
  /** pino level; default `info`. Tests pass `silent`. */
  level?: string;
  name?: string;
  /**
   * Readable lines (pino-pretty: time, level, message, then the fields) instead of one JSON
   * object per line. For a person at a terminal; anything that reads the output (tests, log
   * shippers) wants the default JSON. The entry point decides, from `process.stdout.isTTY`.
   */
  pretty?: boolean;
}

/** Structured logger on stdout, with secrets redacted. `LOG_LEVEL` is read by the entry point and passed in. */
export function createLogger(options: LoggerOptions = {}): PinoLogger {
  const settings = {
    level: options.level ?? 'info',
    ...(options.name ? { name: options.name } : {}),
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (!options.pretty) return pino(settings);
  // In-process and synchronous rather than a transport worker: the launcher logs a fatal error
  // and exits right away, and a line still queued for a worker thread would be lost.
  return pino(settings, pinoPretty({ sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

/** A logger that drops everything, for tests and for callers that pass none. */
export const silentLogger: PinoLogger = pino({ level: 'silent' });

/** What `exitAfterFlush` reads of pino's stdout destination (a sonic-boom). */
interface Destination {
  /** Bytes written to it and not yet to the file descriptor (sonic-boom 4). */
  _len?: number;
  flushSync?: () => void;
}

/**
 * Ends the process with `code` once the log lines written so far are out, or after `timeoutMs`
 * without them: then they are dropped. pino flushes stdout on exit with sonic-boom's
 * `flushSync`, which (sonic-boom 4, what pino 9 and 10 use) retries any failed write for ever:
 * lines still waiting for a reader that stopped reading and then went away (EPIPE) kept an
 * exiting process alive until SIGKILL, and a reader that stalls would keep it too.
 */
export function exitAfterFlush(logger: Logger, code: number, timeoutMs = 500): void {
  const destination = (logger as unknown as Record<symbol, Destination | undefined>)[symbols.streamSym];
  const pending = () => (destination?._len ?? 0) > 0;
  const deadline = Date.now() + timeoutMs;
  const check = () => {
    if (pending() && Date.now() < deadline) return void setTimeout(check, 10);
    // Still waiting on the reader: the exit must not wait for it (the lines are lost).
    if (pending() && destination) destination.flushSync = () => {};
    process.exit(code);
  };
  check();
}

import { pino, type Logger as PinoLogger } from 'pino';
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

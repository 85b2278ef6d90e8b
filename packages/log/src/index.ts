import { pino, type Logger as PinoLogger } from 'pino';

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

/**
 * Structured JSON logger. `LOG_LEVEL` is read by the entry point and passed in; tests pass
 * `level: 'silent'`.
 */
export function createLogger(options: { level?: string; name?: string } = {}): PinoLogger {
  return pino({
    level: options.level ?? 'info',
    ...(options.name ? { name: options.name } : {}),
    redact: { paths: REDACT, censor: '[redacted]' },
  });
}

/** A logger that drops everything, for tests and for callers that pass none. */
export const silentLogger: PinoLogger = pino({ level: 'silent' });

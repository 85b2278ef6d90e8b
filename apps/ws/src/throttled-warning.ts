import type { Logger } from '@repo/log';

/**
 * Logs a warning at most once per `intervalMs`, with how many were suppressed since the last
 * line. A publisher spraying malformed events must not turn into a log flood.
 */
export class ThrottledWarning {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #lastAt = -Infinity;
  #suppressed = 0;

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  warn(fields: Record<string, unknown>, message: string, nowMs = Date.now()): void {
    if (nowMs - this.#lastAt < this.#intervalMs) {
      this.#suppressed += 1;
      return;
    }
    this.#lastAt = nowMs;
    this.#logger.warn({ ...fields, suppressed: this.#suppressed }, message);
    this.#suppressed = 0;
  }
}

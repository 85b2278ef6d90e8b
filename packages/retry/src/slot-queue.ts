/** A place in line for a slot (`SlotQueue.acquire`). */
export interface SlotRequest {
  /** True once the slot is held (give it back with `release()`); false when the deadline passed first. */
  readonly granted: Promise<boolean>;
  /** Waits until `deadlineMs` instead, when that is later: someone else now wants the same work. */
  extend(deadlineMs: number): void;
}

interface Waiter {
  deadline: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  settle: (granted: boolean) => void;
}

const GRANTED_AT_ONCE: SlotRequest = { granted: Promise.resolve(true), extend: () => {} };

/**
 * Bounds the work a process hands a slow dependency (the session store, the order history, the
 * thread pool that hashes passwords):
 * at most `concurrency` slots are held at once; up to `maxWaiting` more wait for one in
 * arrival order, each until its deadline, and any further one is refused at once.
 *
 * A slot is held until the work ends, not until its caller stops waiting: the bound is on what
 * the dependency does. A waiter whose deadline passed leaves the line then (it also stops
 * counting against `maxWaiting`), and is never handed a slot: its caller has already been told
 * it failed, so the work would be thrown away while others wait behind it.
 */
export class SlotQueue {
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  readonly #onChange: (held: number, waiting: number) => void;
  #held = 0;
  /** In arrival order (a Set keeps insertion order and forgets a waiter that gave up in O(1)). */
  readonly #waiting = new Set<Waiter>();

  /** `onChange` hears the slots held and the waiters after every change (for gauges). */
  constructor(options: {
    concurrency: number;
    maxWaiting: number;
    onChange?: (held: number, waiting: number) => void;
  }) {
    this.#concurrency = options.concurrency;
    this.#maxWaiting = options.maxWaiting;
    this.#onChange = options.onChange ?? (() => {});
  }

  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * A slot for work that must start by `deadlineMs`: at once when one is free, else once one is
   * released to this waiter. Null when `maxWaiting` already wait: refused, never queued. With
   * `refusable: false` (work already promised, which its caller cannot turn down) it waits in
   * line all the same, and counts towards `maxWaiting` for those that follow.
   */
  acquire(deadlineMs: number, { refusable = true }: { refusable?: boolean } = {}): SlotRequest | null {
    if (this.#held < this.#concurrency) {
      this.#held += 1;
      this.#report();
      return GRANTED_AT_ONCE;
    }
    if (refusable && this.#waiting.size >= this.#maxWaiting) return null;
    let settle!: (granted: boolean) => void;
    const granted = new Promise<boolean>((resolve) => (settle = resolve));
    const waiter: Waiter = { deadline: deadlineMs, timer: undefined, settle };
    this.#arm(waiter);
    this.#waiting.add(waiter);
    this.#report();
    return {
      granted,
      extend: (later) => {
        if (later <= waiter.deadline || !this.#waiting.has(waiter)) return;
        waiter.deadline = later;
        clearTimeout(waiter.timer);
        this.#arm(waiter);
      },
    };
  }

  /** The work of a granted slot ended: the slot goes to the first waiter still in time, or is freed. */
  release(): void {
    const now = Date.now();
    for (const waiter of this.#waiting) {
      this.#leave(waiter);
      // Past its deadline, its timer may not have run yet on a busy event loop: skipped all the same.
      if (waiter.deadline > now) {
        waiter.settle(true);
        this.#report();
        return;
      }
      waiter.settle(false);
    }
    this.#held -= 1;
    this.#report();
  }

  // Not unref'd: a caller may be waiting on nothing but this timer, and an unref'd one lets the
  // process end under it (node:test cancelled every waiting test when it was tried).
  #arm(waiter: Waiter): void {
    waiter.timer = setTimeout(
      () => {
        this.#leave(waiter);
        this.#report();
        waiter.settle(false);
      },
      Math.max(1, waiter.deadline - Date.now()),
    );
  }

  #leave(waiter: Waiter): void {
    this.#waiting.delete(waiter);
    clearTimeout(waiter.timer);
  }

  #report(): void {
    this.#onChange(this.#held, this.#waiting.size);
  }
}

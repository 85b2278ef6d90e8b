/**
 * Memory shared between the load generator's receiving thread and its publisher thread.
 *
 * How an event is stamped: the publisher numbers events 1, 2, 3… (the sequence number, `seq`)
 * and puts `seq` where the gateway must pass it through unchanged and its schema accepts it:
 * the integer part of the price (`"<seq>.45"`) for price ticks, the `orderId` for fills. Just
 * before it publishes event `seq` it writes the send time (monotonic clock, ms) into
 * `sendTimes[seq % CAPACITY]`. The receiving thread reads it back when a client gets the event:
 * one clock, no clock skew, no timestamp precision lost to ISO strings, and the events keep the
 * contract's exact shape (the gateway validates with zod and strips unknown keys).
 */
export const CAPACITY = 1 << 20;

/** Slots of the control array. */
export const CTL = {
  /** Set to 1 by the receiver to stop the publisher. */
  stop: 0,
  /** Highest seq published so far (publisher writes). */
  published: 1,
  /** Lowest seq every client has received (receiver writes; drives the publishing window). */
  minReceived: 2,
  /** Seq of the first event inside the measured window (publisher writes, 0 until then). */
  measureFrom: 3,
  /** Seq of the last event inside the measured window (publisher writes, 0 until then). */
  measureTo: 4,
  length: 8,
} as const;

export interface SharedState {
  control: Int32Array;
  /** Send time in ms (monotonic clock) of event `seq`, at `seq % CAPACITY`. */
  sendTimes: Float64Array;
  /** For private events: the user each event `seq` was addressed to, at `seq % CAPACITY`. */
  targets: Int32Array;
}

export interface SharedBuffers {
  control: SharedArrayBuffer;
  sendTimes: SharedArrayBuffer;
  targets: SharedArrayBuffer;
}

export function createSharedBuffers(): SharedBuffers {
  return {
    control: new SharedArrayBuffer(CTL.length * 4),
    sendTimes: new SharedArrayBuffer(CAPACITY * 8),
    targets: new SharedArrayBuffer(CAPACITY * 4),
  };
}

export function viewShared(buffers: SharedBuffers): SharedState {
  return {
    control: new Int32Array(buffers.control),
    sendTimes: new Float64Array(buffers.sendTimes),
    targets: new Int32Array(buffers.targets),
  };
}

/** The price string that carries `seq`: a valid positive decimal, like a real tick. */
export function priceForSeq(seq: number): string {
  return `${seq}.45`;
}

export { backoffDelay, type BackoffOptions } from './backoff.ts';
export { TimeoutError, withTimeout } from './timeout.ts';
export { SlotQueue, type SlotRequest } from './slot-queue.ts';

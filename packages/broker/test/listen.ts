import type { Broker, Unsubscribe } from '../src/index.ts';

export interface ChannelListener {
  /** Every message received so far, in order. */
  readonly messages: readonly string[];
  /** The next message not yet taken, awaited with a timeout. */
  next(timeoutMs?: number): Promise<string>;
  stop: Unsubscribe;
}

/**
 * Subscribes to `channel` and resolves once the subscription is live, so a test can publish
 * right after it instead of sleeping until the subscription has probably been made.
 */
export async function listen(broker: Broker, channel: string): Promise<ChannelListener> {
  const messages: string[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  const stop = await broker.subscribe(channel, (message) => {
    messages.push(message);
    wake?.();
  });
  return {
    messages,
    stop,
    async next(timeoutMs = 5000) {
      if (taken === messages.length) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            wake = undefined;
            reject(new Error(`timed out after ${timeoutMs} ms waiting for a message on ${channel}`));
          }, timeoutMs);
          wake = () => {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          };
        });
      }
      return messages[taken++]!;
    },
  };
}

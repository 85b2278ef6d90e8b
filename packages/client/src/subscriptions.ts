import type { Channel, EventMessage } from '@repo/protocol';
import type { SymbolFilter } from './price-symbols.ts';

/** One `subscribe()` call: its handler, and whether the server has confirmed it. */
export interface SubscriptionEntry {
  readonly channel: Channel;
  readonly handler: (message: EventMessage) => void;
  /** On `prices`: the symbols this handler wants (null: every symbol). Null on other channels. */
  readonly symbols: SymbolFilter;
  /** Set by the `subscribed` reply: only active entries receive messages and are resubscribed. */
  active: boolean;
  /**
   * Joined a `portfolio` subscription and still waits for the snapshot that follows the
   * reply. That snapshot usually has the version the older handlers already have, so it is
   * a duplicate for them, but it is this handler's first state.
   */
  awaitingSnapshot: boolean;
}

/**
 * The handlers per channel, and which channels the current socket is subscribed to on the
 * server. Several `subscribe()` calls may share one channel: the server subscription ends
 * only when the last of them unsubscribes, so an entry counts from the moment it is added
 * (a subscribe still in flight must not be undone by another handler's unsubscribe).
 */
export class SubscriptionRegistry {
  private readonly byChannel = new Map<Channel, Set<SubscriptionEntry>>();
  private readonly onServer = new Set<Channel>();

  add(channel: Channel, handler: (message: EventMessage) => void, symbols: SymbolFilter = null): SubscriptionEntry {
    const entry: SubscriptionEntry = { channel, handler, symbols, active: false, awaitingSnapshot: false };
    let set = this.byChannel.get(channel);
    if (!set) {
      set = new Set();
      this.byChannel.set(channel, set);
    }
    set.add(entry);
    return entry;
  }

  has(entry: SubscriptionEntry): boolean {
    return this.byChannel.get(entry.channel)?.has(entry) ?? false;
  }

  /** Removes `entry`; false when it was already gone. */
  remove(entry: SubscriptionEntry): boolean {
    const set = this.byChannel.get(entry.channel);
    if (!set?.delete(entry)) return false;
    if (set.size === 0) this.byChannel.delete(entry.channel);
    return true;
  }

  /** How many handlers (confirmed or in flight) a channel has. */
  count(channel: Channel): number {
    return this.byChannel.get(channel)?.size ?? 0;
  }

  /** Every handler of `channel`, confirmed or in flight. */
  entries(channel: Channel): SubscriptionEntry[] {
    return [...(this.byChannel.get(channel) ?? [])];
  }

  /** The confirmed handlers of `channel`, copied so a handler may unsubscribe while called. */
  activeEntries(channel: Channel): SubscriptionEntry[] {
    const set = this.byChannel.get(channel);
    if (!set) return [];
    const entries: SubscriptionEntry[] = [];
    for (const entry of set) if (entry.active) entries.push(entry);
    return entries;
  }

  /** Channels with at least one confirmed handler: what a reconnect resubscribes. */
  liveChannels(): Channel[] {
    const channels: Channel[] = [];
    for (const [channel, set] of this.byChannel) {
      for (const entry of set) {
        if (entry.active) {
          channels.push(channel);
          break;
        }
      }
    }
    return channels;
  }

  /** Ends every confirmed handler of `channel` (its resubscription was refused). */
  endActive(channel: Channel): void {
    const set = this.byChannel.get(channel);
    if (!set) return;
    for (const entry of [...set]) if (entry.active) set.delete(entry);
    if (set.size === 0) this.byChannel.delete(channel);
  }

  markOnServer(channel: Channel): void {
    this.onServer.add(channel);
  }

  markOffServer(channel: Channel): void {
    this.onServer.delete(channel);
  }

  isOnServer(channel: Channel): boolean {
    return this.onServer.has(channel);
  }

  /** The socket is gone, and with it every server-side subscription. */
  socketLost(): void {
    this.onServer.clear();
  }

  clear(): void {
    this.byChannel.clear();
    this.onServer.clear();
  }
}

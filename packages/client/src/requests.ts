import type { ClientMessage, ReplyMessage } from '@repo/protocol';
import { TimeoutError } from '@repo/retry';
import type { ClientError } from './errors.ts';

/** The reply type each request type resolves on. */
export const REPLY_TYPE = {
  auth: 'auth_ok',
  subscribe: 'subscribed',
  unsubscribe: 'unsubscribed',
  ping: 'pong',
} as const satisfies Record<ClientMessage['type'], ReplyMessage['type']>;

export type ReplyTo<M extends ClientMessage> = Extract<ReplyMessage, { type: (typeof REPLY_TYPE)[M['type']] }>;

/** A request waiting to be sent or for its reply. */
export interface PendingRequest {
  readonly id: number;
  readonly message: ClientMessage & { id: number };
  /** Serialised once, when created. */
  readonly frame: string;
  sent: boolean;
  /** Monotonic ms when the frame went out, for `ping()`. */
  sentAt: number;
  /**
   * Runs synchronously when the reply arrives, before any later frame is handled: a
   * `subscribed` reply must activate its handler before the snapshot right behind it.
   */
  readonly onReply: ((reply: ReplyMessage, request: PendingRequest) => void) | undefined;
  readonly resolve: (reply: ReplyMessage) => void;
  readonly reject: (error: ClientError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * Requests by id, plus the queue of those made while the connection was not ready. Every
 * request has a deadline from the moment it is made, so the queue cannot grow without bound
 * while the client is offline: what is not answered within `timeoutMs` rejects with `timeout`.
 */
export class RequestTable {
  private nextId = 1;
  private readonly byId = new Map<number, PendingRequest>();
  /** Not yet sent, in the order they were made. */
  private queue: PendingRequest[] = [];

  constructor(private readonly timeoutMs: number) {}

  create<M extends ClientMessage>(
    message: M,
    onReply?: (reply: ReplyTo<M>, request: PendingRequest) => void,
  ): { request: PendingRequest; reply: Promise<ReplyTo<M>> } {
    const id = this.nextId++;
    const withId = { ...message, id };
    let request!: PendingRequest;
    const reply = new Promise<ReplyTo<M>>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.forget(request)) return;
        reject(new TimeoutError(`no reply to ${message.type} (id ${id}) within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      request = {
        id,
        message: withId,
        frame: JSON.stringify(withId),
        sent: false,
        sentAt: 0,
        onReply: onReply as PendingRequest['onReply'],
        resolve: resolve as (reply: ReplyMessage) => void,
        reject,
        timer,
      };
    });
    this.byId.set(id, request);
    return { request, reply };
  }

  /** Holds `request` until `takeQueued()`. */
  enqueue(request: PendingRequest): void {
    this.queue.push(request);
  }

  /** The queued requests still waiting, oldest first; the queue is emptied. */
  takeQueued(): PendingRequest[] {
    const queued = this.queue.filter((r) => this.byId.has(r.id));
    this.queue = [];
    return queued;
  }

  /** The request a reply's `id` refers to, if it is still waiting. */
  get(id: unknown): PendingRequest | undefined {
    const key = typeof id === 'number' ? id : typeof id === 'string' && /^\d{1,15}$/.test(id) ? Number(id) : NaN;
    return this.byId.get(key);
  }

  /** Settles `request` with its reply (or an error reply). */
  settle(request: PendingRequest, outcome: { reply: ReplyMessage } | { error: ClientError }): void {
    if (!this.forget(request)) return;
    if ('error' in outcome) {
      request.reject(outcome.error);
      return;
    }
    try {
      request.onReply?.(outcome.reply, request);
    } catch (error) {
      request.reject(error as ClientError);
      return;
    }
    request.resolve(outcome.reply);
  }

  /** Rejects every request already sent: their socket is gone. Queued ones keep waiting. */
  rejectSent(error: () => ClientError): void {
    for (const request of [...this.byId.values()]) {
      if (request.sent) this.settle(request, { error: error() });
    }
  }

  /** Rejects everything, sent or queued (the client is closing). */
  rejectAll(error: () => ClientError): void {
    for (const request of [...this.byId.values()]) this.settle(request, { error: error() });
    this.queue = [];
  }

  private forget(request: PendingRequest): boolean {
    if (this.byId.get(request.id) !== request) return false;
    this.byId.delete(request.id);
    clearTimeout(request.timer);
    return true;
  }
}

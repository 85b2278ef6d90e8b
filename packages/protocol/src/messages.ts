import type { OrderFilledEvent, OrderRejectedEvent, PortfolioUpdateEvent, PriceUpdateEvent } from '@repo/events';
import type { Channel, ErrorCode } from './codes.ts';

/** A request id chosen by the client; the reply echoes it. */
export type RequestId = string | number;

// Client → server
type AuthRequest = { type: 'auth'; token: string; id?: RequestId };
export type SubscribeRequest = {
  type: 'subscribe';
  channel: Channel;
  /** On `orders`: replay the events after this sequence number. */
  since?: number;
  /**
   * On `prices`: only these symbols' ticks (deduplicated, at most `MAX_SUBSCRIBE_SYMBOLS`);
   * absent, every symbol. A later subscribe replaces the set.
   */
  symbols?: string[];
  id?: RequestId;
};
type UnsubscribeRequest = { type: 'unsubscribe'; channel: Channel; id?: RequestId };
type PingRequest = { type: 'ping'; id?: RequestId };
export type ClientMessage = AuthRequest | SubscribeRequest | UnsubscribeRequest | PingRequest;

// Server → client
export type AuthOkMessage = { type: 'auth_ok'; userId: number; id?: RequestId };
export type SubscribedMessage = {
  type: 'subscribed';
  channel: Channel;
  id?: RequestId;
  /** On `orders` with `since`: whether the history reached back to it. */
  recovered?: boolean;
  /** On `orders`: the user's latest order-event sequence number. */
  seq?: number;
  /** On `prices` subscribed with `symbols`: the set now in force. Absent: every symbol. */
  symbols?: string[];
};
type UnsubscribedMessage = { type: 'unsubscribed'; channel: Channel; id?: RequestId };
type PongMessage = { type: 'pong'; id?: RequestId };
export type ErrorMessage = { type: 'error'; code: ErrorCode; message: string; id?: RequestId };
export type PriceMessage = { type: 'price' } & PriceUpdateEvent;
export type OrderFilledMessage = { type: 'order_filled' } & OrderFilledEvent;
export type OrderRejectedMessage = { type: 'order_rejected' } & OrderRejectedEvent;
export type PortfolioMessage = { type: 'portfolio' } & PortfolioUpdateEvent;

export type ReplyMessage = AuthOkMessage | SubscribedMessage | UnsubscribedMessage | PongMessage | ErrorMessage;
export type EventMessage = PriceMessage | OrderFilledMessage | OrderRejectedMessage | PortfolioMessage;
export type ServerMessage = ReplyMessage | EventMessage;

/** Which server event types each channel carries. */
export type ChannelMessage<C extends Channel> = C extends 'prices'
  ? PriceMessage
  : C extends 'orders'
    ? OrderFilledMessage | OrderRejectedMessage
    : PortfolioMessage;

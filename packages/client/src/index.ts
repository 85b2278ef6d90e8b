/**
 * @repo/client: the typed tradewire WebSocket client, for browsers (global `WebSocket`) and
 * Node (pass the `ws` package's `WebSocket`).
 *
 * ```ts
 * import { connect, ServerError } from '@repo/client';
 * // In Node: import { WebSocket } from 'ws'; connect(url, { WebSocket })
 * const client = connect('ws://localhost:3001');
 * client.on('state', (state) => console.log('connection', state));
 * client.on('resync', (channel) => reloadOverRest(channel)); // history gap: reload orders/portfolio
 * client.on('error', (error) => {
 *   if (error.code === 'session_revoked' || error.code === 'session_expired') showLogin();
 * });
 *
 * await client.subscribe('prices', (tick) => showPrice(tick.symbol, tick.price));
 * await client.subscribe('prices', (tick) => drawChart(tick), { symbols: ['BTC'] }); // BTC only
 * try {
 *   const { userId } = await client.auth(sessionToken);
 *   const stop = await client.subscribe('orders', (event) => {
 *     if (event.type === 'order_filled') showFill(event);
 *     else showRejection(event.reason);
 *   });
 *   // later: await stop();
 * } catch (error) {
 *   if (error instanceof ServerError && error.code === 'auth_failed') showLogin();
 * }
 * client.close(); // for good: no reconnect
 * ```
 *
 * Behaviour worth knowing:
 * - Requests carry an incrementing `id` and settle on the reply with that id; a
 *   `{"type":"error","id":…}` rejects with a `ServerError` whose `code` is the server's.
 *   Requests made before the connection is ready are queued; every request rejects with a
 *   `TimeoutError` (code `timeout`, the class `@repo/retry` throws everywhere) after
 *   `requestTimeoutMs` (default 10 s), and a request already sent rejects with a
 *   `ConnectionClosedError` (code `connection_closed`) when its connection drops. Every
 *   rejection has a `code` (`ClientErrorCode`, the protocol's table): switch on it.
 * - Any close not asked for with `close()` is followed by a reconnect after a full-jitter
 *   backoff (uniform in [0, min(maxDelayMs, baseDelayMs·2^attempt)), defaults 250 ms and
 *   10 s). That includes 1008 (policy violation) and 4008 (slow consumer): the client still
 *   reconnects, but the backoff keeps growing across those closes instead of starting over,
 *   so a client that keeps tripping a limit settles at one attempt per `maxDelayMs`.
 * - `auth()` with another user's token ends the previous user's `orders` and `portfolio`
 *   subscriptions, as the server does: their handlers hear nothing more, and no reconnect
 *   subscribes them for the new user. Subscribe again for the new user.
 * - After reconnecting, the client re-authenticates with the remembered token (the one that
 *   last got `auth_ok`), then resubscribes every channel that has handlers, `orders` with
 *   `since` = the last `seq` seen. Only then is the state `open` and `reconnected` emitted.
 *   If the token is refused (`auth_failed`) it is forgotten and an `error` event says so; a
 *   refused resubscription ends that subscription, also with an `error` event. Transient
 *   answers (`rate_limited`, `broker_unavailable`, `internal_error`, no reply) are retried
 *   on a new connection instead.
 * - `prices` with `symbols`: one server subscription per client, to the union of every
 *   handler's symbols (every symbol when a handler passed none); each handler gets only its
 *   own symbols. A joining handler first gets the latest price of each of its symbols (the
 *   server's snapshot for symbols new on the socket, the client's last received price for
 *   those already live, which the server does not repeat); unsubscribing a handler narrows the
 *   server's set. The same union is asked for again after a reconnect. One unknown symbol
 *   (`unknown_symbol`) refuses the whole request, so a `subscribe()` made while another one
 *   naming an unknown symbol is still in flight is refused too (its request carries the union).
 * - Delivery positions: an order event whose `seq` is not above the last one seen for its
 *   user is a duplicate and is dropped; so is a portfolio whose `version` is not above the
 *   last one (a handler that just subscribed still gets its snapshot). `recovered:false`
 *   in a `subscribed` reply emits `resync`. Messages without `seq`/`version` are never dropped.
 * - A dead connection is noticed even when it never closes (a frozen gateway, a half-open TCP
 *   connection): browsers cannot see WebSocket ping frames, so after `pingIntervalMs` (15 s)
 *   without any frame the client sends the protocol's `{"type":"ping"}`, and when no frame at
 *   all arrives within `pongTimeoutMs` (10 s) after it, it closes the socket (4000 `not
 *   answering`) and reconnects, resuming as after any drop. A steady stream of events means no
 *   pings at all.
 * - Handlers and listeners that throw are logged through `logger.warn`; delivery goes on.
 */
export { connect, TradewireClient } from './client.ts';
export type { ClientOptions, ConnectionState, ResyncChannel, SubscribeOptions } from './client.ts';
export { ServerError, ConnectionClosedError } from './errors.ts';
export { TimeoutError } from '@repo/retry';
export { nextReconnectAttempt } from './backoff.ts';
export type { Channel, ChannelMessage, ClientErrorCode, ErrorCode } from '@repo/protocol';

export { openDatabase, type Database, type DatabaseOptions, type PortfolioEventPayload } from './database.ts';
export {
  DEFAULT_CHECK_BATCH_SIZE,
  DEFAULT_FAILED_TOKEN_TTL_MS,
  DEFAULT_MAX_FAILED_TOKENS,
  createSessionStore,
  type ActiveSession,
  type SessionStore,
  type SessionState,
  type SessionStoreOptions,
  type SessionsRepository,
} from './sessions.ts';
export { toSafeInteger } from './int64.ts';
export type { UsersRepository, NewUser, UserCredentials } from './users.ts';
export type { OrdersRepository, OrderRecord, OrderPage, PlaceOrderInput, PlaceOrderResult } from './orders.ts';
export type { PortfolioRepository, PortfolioView, BalanceView, PositionView } from './portfolio.ts';
export type { OutboxRepository, OutboxEvent, OrderHistoryPage } from './outbox.ts';
export {
  DEFAULT_PASSWORD_HASH,
  SESSION_TOKEN_PATTERN,
  burnPasswordCheck,
  hashPassword,
  hashToken,
  needsRehash,
  newSessionToken,
  tokenHashesEqual,
  verifyPassword,
  type PasswordHashParams,
} from './credentials.ts';
export { MONEY_SCALE, SIZE_SCALE, canonical, checkSize, dec, type Decimal, type SizeCheck } from './decimal.ts';
export {
  executeMarketOrder,
  type MarketOrderInput,
  type MarketOrderOutcome,
  type RejectReason,
  type Side,
} from './paper-trading.ts';
export {
  DatabaseError,
  IdempotencyKeyReusedError,
  SessionNotActiveError,
  UnknownUserError,
  UsernameTakenError,
} from './errors.ts';
export { MIGRATIONS_FOLDER } from './migrate.ts';
export {
  CANDLE_INTERVALS,
  CANDLE_INTERVAL_MS,
  UPSERT_CHUNK,
  createCandlesRepository,
  latestCandleRows,
  type Candle,
  type CandleInterval,
  type CandleRow,
  type CandlesRepository,
} from './candles.ts';
export { CANDLE_WRITER_LOCK_KEY, NotWriterError, type SingleWriter } from './single-writer.ts';
export * as schema from './schema.ts';
export type { DrizzleDb } from './drizzle.ts';

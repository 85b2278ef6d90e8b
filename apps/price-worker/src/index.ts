export {
  PriceSourceError,
  type PriceQuote,
  type PriceSource,
  type PriceSourceErrorCode,
  type PriceStream,
  type PriceStreamListener,
  type ReadOptions,
} from './price-source.ts';
export {
  createSimulatedSource,
  DEFAULT_MEAN_REVERSION_HALF_LIFE,
  DEFAULT_START_PRICES,
  DEFAULT_VOLATILITY,
  type SimulatedSource,
  type SimulatedSourceOptions,
} from './simulated-source.ts';
export {
  createPythSource,
  UnknownSymbolError,
  type PythSource,
  type PythSourceOptions,
  type PythSourceStats,
  type ResolveOptions,
} from './pyth-source.ts';
export { DEFAULT_FEED_IDS, DEFAULT_MAX_CONF_RATIO, SOL_USD_FEED_ID } from './pyth-feeds.ts';
export { DEFAULT_HERMES_URL } from './hermes-client.ts';
export type { PythStreamOptions, PythStreamStats } from './pyth-stream.ts';
export { scaleInteger } from './scaled-integer.ts';
export {
  createPriceWorker,
  type PriceWorker,
  type PriceWorkerOptions,
  type PriceWorkerStats,
  type TickResult,
} from './price-worker.ts';

export {
  PriceSourceError,
  type PriceQuote,
  type PriceSource,
  type PriceSourceErrorCode,
  type ReadOptions,
} from './price-source.ts';
export {
  createSimulatedSource,
  DEFAULT_START_PRICES,
  DEFAULT_VOLATILITY,
  type SimulatedSource,
  type SimulatedSourceOptions,
} from './simulated-source.ts';
export {
  createPythSource,
  DEFAULT_FEED_IDS,
  DEFAULT_HERMES_URL,
  SOL_USD_FEED_ID,
  type PythSourceOptions,
} from './pyth-source.ts';
export { scaleInteger } from './scaled-integer.ts';
export { createPriceWorker, type PriceWorker, type PriceWorkerOptions, type TickResult } from './price-worker.ts';

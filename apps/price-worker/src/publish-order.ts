import type { PriceQuote } from './price-source.ts';

/** `publish`: newer, or as new with another price; `older`: before the last one; `repeat`: already seen. */
export type OrderVerdict = 'publish' | 'older' | 'repeat';

/**
 * Keeps the last published quote per symbol, so that a price never steps back in time: polling
 * and streaming overlap, a reconnected stream starts again with the current update, and Hermes
 * itself can send an update twice. Quotes are ordered by `publishTime`; one without (the
 * simulated source) is always new: its time is the tick's.
 */
export class PublishOrder {
  readonly #last = new Map<string, PriceQuote>();

  judge(quote: PriceQuote): OrderVerdict {
    return compareQuotes(this.#last.get(quote.symbol), quote);
  }

  /** Records a quote once it has been stored and published. */
  record(quote: PriceQuote): void {
    this.#last.set(quote.symbol, quote);
  }
}

/** What `next` is to `last` (of the same symbol): newer, older, or the same update again. */
export function compareQuotes(last: PriceQuote | undefined, next: PriceQuote): OrderVerdict {
  const lastMs = timeOf(last);
  const nextMs = timeOf(next);
  if (lastMs === undefined || nextMs === undefined || nextMs > lastMs) return 'publish';
  if (nextMs < lastMs) return 'older';
  return next.price === last!.price ? 'repeat' : 'publish';
}

function timeOf(quote: PriceQuote | undefined): number | undefined {
  if (quote?.publishTime === undefined) return undefined;
  const ms = Date.parse(quote.publishTime);
  return Number.isNaN(ms) ? undefined : ms;
}

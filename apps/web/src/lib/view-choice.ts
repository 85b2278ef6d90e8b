/**
 * The market and chart interval the user last chose, kept in localStorage: a reload, or the
 * next visit, opens the same chart. A value that is no longer offered is ignored.
 */
const MARKET_KEY = 'tradewire.market';
const INTERVAL_KEY = 'tradewire.interval';

function load(key: string, storage: Storage): string | null {
  try {
    const value = storage.getItem(key);
    return value && /^[A-Za-z0-9]{1,16}$/.test(value) ? value : null;
  } catch {
    // Storage may be unavailable (privacy settings): the defaults apply.
    return null;
  }
}

function save(key: string, value: string, storage: Storage): void {
  try {
    storage.setItem(key, value);
  } catch {
    // Not remembered; the choice still holds for this page.
  }
}

export const loadMarket = (storage: Storage = localStorage) => load(MARKET_KEY, storage);
export const saveMarket = (symbol: string, storage: Storage = localStorage) => save(MARKET_KEY, symbol, storage);
export const loadInterval = (storage: Storage = localStorage) => load(INTERVAL_KEY, storage);
export const saveInterval = (id: string, storage: Storage = localStorage) => save(INTERVAL_KEY, id, storage);

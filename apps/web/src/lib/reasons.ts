/**
 * Rejection reasons arrive as codes (`insufficient_funds`…, see docs/api.md). People read a
 * sentence; an unknown code is still shown, made readable, rather than hidden.
 */
const REASON_TEXT: Record<string, string> = {
  insufficient_funds: 'Not enough USD for this buy and its fee',
  insufficient_position: 'Not enough SOL to sell',
  no_price: 'No price yet; try again in a moment',
  price_stale: 'The price is stale; try again when it updates',
};

export function reasonText(reason: string | null): string {
  if (!reason) return 'No reason given';
  const known = REASON_TEXT[reason];
  if (known) return known;
  const words = reason.replace(/_/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

import type { ConnectionStatus } from '../lib/use-gateway.ts';

const LABELS: Record<ConnectionStatus, { text: string; hint: string }> = {
  live: { text: 'Live', hint: 'Connected: prices and orders update as they happen' },
  connecting: { text: 'Connecting…', hint: 'Opening the live connection' },
  reconnecting: { text: 'Reconnecting…', hint: 'The live connection dropped; figures may be behind until it is back' },
  offline: { text: 'Offline', hint: 'The server cannot be reached; figures are not updating' },
};

/**
 * The connection state, always visible; announced politely to screen readers when it changes.
 * `problem`, when set, says why there is no connection (the page also shows it in full).
 */
export function ConnectionBadge({ status, problem = null }: { status: ConnectionStatus; problem?: string | null }) {
  const label = LABELS[status];
  return (
    <div
      role="status"
      aria-live="polite"
      className={`conn conn-${status}`}
      title={problem ?? label.hint}
      data-state={status}
    >
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-text">{label.text}</span>
    </div>
  );
}

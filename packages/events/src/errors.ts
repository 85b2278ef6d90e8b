/** A publisher handed an event that fails its schema. Nothing was published. */
export class EventValidationError extends Error {
  readonly code = 'invalid_event';
  readonly kind: string;
  readonly issues: { path: string; message: string }[];

  constructor(kind: string, issues: { path: string; message: string }[]) {
    super(`invalid ${kind} event: ${issues.map((i) => `${i.path || '(root)'} ${i.message}`).join('; ')}`);
    this.name = 'EventValidationError';
    this.kind = kind;
    this.issues = issues;
  }
}

// What every layer's errors share: a stable `code` scripts and the admin API can rely on, and messageOf
// for whatever a catch received. Each layer keeps its classes in its own errors.ts (docs/design.md, Habits).

/** Dayshift's own errors. `code` is stable across releases (DAYSHIFT_<WHAT>); the message may change. */
export abstract class DayshiftError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The message of anything thrown: an Error's message, else the value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

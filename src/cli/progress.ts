/**
 * Progress of long file work (measuring, hashing, writing large EIFs), shown on standard error
 * only when it is a terminal: one line redrawn in place, cleared when done. Never on pipes or
 * files, so scripts and logs see exactly what they saw before.
 * @module
 */
import type { CliIo } from './io.js';

/** Files below this size finish too fast for progress to be worth drawing. */
export const PROGRESS_MIN_BYTES = 8 << 20;
/** Least time between two redraws. */
const REDRAW_MS = 100;

/** Reports bytes done out of a total for a named piece of work. */
export type ProgressReport = (label: string, done: number, total: number) => void;

export interface Progress {
  /** Redraws the line for `label` (throttled; small totals are not shown). */
  readonly report: ProgressReport;
  /** Clears the line. */
  finish(): void;
}

const MiB = 1 << 20;

/** A terminal progress line for `command`, or null when standard error is not a terminal. */
export function ttyProgress(io: CliIo, command: string): Progress | null {
  const stderr = io.stderr as NodeJS.WritableStream & { isTTY?: boolean };
  if (stderr.isTTY !== true) return null;
  let last = 0;
  let shown = false;
  return {
    report(label, done, total) {
      if (total < PROGRESS_MIN_BYTES) return;
      const now = Date.now();
      if (done < total && now - last < REDRAW_MS) return;
      last = now;
      const pct = Math.floor((done / total) * 100);
      stderr.write(`\r\x1b[Knsm-emulator ${command}: ${label} ${String(pct).padStart(3)}% (${(done / MiB).toFixed(1)} of ${(total / MiB).toFixed(1)} MiB)`);
      shown = true;
    },
    finish() {
      if (shown) stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

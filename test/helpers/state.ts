/** Captures everything observable about a device's state, to show a request changed nothing. */
import type { NsmDevice } from '../../src/index.js';

export function deviceState(d: NsmDevice): string {
  const s = d.exportState();
  return JSON.stringify({ pcrs: Buffer.from(s.pcrs).toString('hex'), locks: s.locks, rnd: s.randomPositions, id: d.moduleId });
}

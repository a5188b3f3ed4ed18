/**
 * The PCR bank: 32 SHA-384 registers, each with a one-way lock.
 *
 * Extend is `new = SHA-384(old || data)` with the data as given (not hashed first). Locks only
 * go on; {@link PcrBank.boot} is the only way back to unlocked.
 * @module
 */
import { type DeviceSha384, nobleDeviceSha384 } from './sha384.js';
import { BOOT_LOCKED_PCRS, MAX_PCRS, PCR_LENGTH } from './limits.js';

export interface PcrValue {
  readonly index: number;
  readonly locked: boolean;
  readonly data: Uint8Array;
}

/** `SHA-384(pcr || data)`: the extend operation on its own (`hash`: which SHA-384 computes it). */
export function extendDigest(pcr: Uint8Array, data: Uint8Array, hash: DeviceSha384 = nobleDeviceSha384): Uint8Array {
  return hash(pcr, data);
}

export class PcrBank {
  /** All 32 registers back to back, 48 bytes each. */
  private readonly values = new Uint8Array(MAX_PCRS * PCR_LENGTH);
  private readonly locks = new Array<boolean>(MAX_PCRS).fill(false);
  private lockChanges = 0;

  /** @param hash the SHA-384 extends are computed with (default @noble/hashes; same bytes either way) */
  constructor(private readonly hash: DeviceSha384 = nobleDeviceSha384) {}

  /** Changes whenever the set of locked registers may have changed (for caching DescribeNSM). */
  get lockGeneration(): number {
    return this.lockChanges;
  }

  /**
   * Power-on: every register zero, then the given boot values, then [0, 16) locked.
   * `initial` values must be 48 bytes; the caller validates indices.
   */
  boot(initial: ReadonlyMap<number, Uint8Array> = new Map()): void {
    this.values.fill(0);
    this.locks.fill(false);
    this.lockChanges++;
    for (const [i, v] of initial) this.values.set(v, i * PCR_LENGTH);
    for (let i = 0; i < BOOT_LOCKED_PCRS; i++) this.locks[i] = true;
  }

  /** A view of register `i` (do not keep it across a state change; copy if you need to). */
  view(i: number): Uint8Array {
    return this.values.subarray(i * PCR_LENGTH, (i + 1) * PCR_LENGTH);
  }

  /** A copy of register `i`. */
  read(i: number): Uint8Array {
    return this.values.slice(i * PCR_LENGTH, (i + 1) * PCR_LENGTH);
  }

  /** True once register `i` is locked (until the next boot). */
  isLocked(i: number): boolean {
    return this.locks[i] === true;
  }

  /** Extends register `i`, which the caller has checked is in range and unlocked. */
  extend(i: number, data: Uint8Array): Uint8Array {
    const next = extendDigest(this.view(i), data, this.hash);
    this.values.set(next, i * PCR_LENGTH);
    return next;
  }

  /** Locks register `i` (locking a locked register changes nothing). */
  lock(i: number): void {
    if (this.locks[i] !== true) this.lockChanges++;
    this.locks[i] = true;
  }

  /** Indices of the locked registers, ascending. */
  lockedIndices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < MAX_PCRS; i++) if (this.locks[i]) out.push(i);
    return out;
  }

  /** Every locked register, ascending: what an attestation document carries. */
  lockedValues(): PcrValue[] {
    return this.lockedIndices().map((index) => ({ index, locked: true, data: this.read(index) }));
  }

  /** Copies the whole bank out (for snapshots). */
  export(): { values: Uint8Array; locks: boolean[] } {
    return { values: this.values.slice(), locks: this.locks.slice() };
  }

  /** Restores what {@link export} produced. */
  import(state: { values: Uint8Array; locks: readonly boolean[] }): void {
    if (state.values.length !== this.values.length || state.locks.length !== MAX_PCRS) {
      throw new RangeError('PCR bank state has the wrong size');
    }
    this.values.set(state.values);
    this.lockChanges++;
    for (let i = 0; i < MAX_PCRS; i++) this.locks[i] = state.locks[i] === true;
  }
}

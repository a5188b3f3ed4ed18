/**
 * What the device may read from guest memory on its next pass over a split queue: the rings, and
 * the device-readable buffers and indirect tables named by the descriptors. A transport whose
 * guest memory is a local copy (vfio-user without shared memory) fetches exactly these ranges
 * before it lets {@link VirtioNsmDevice} run, so the device never reads a stale byte it needs.
 *
 * The footprint is a superset of what the device reads: every descriptor of the table is
 * considered, not only the chains that are available. Each readable buffer is fetched up to
 * 4096 bytes (a request longer than that is answered InputTooLarge on its length alone), each
 * indirect table up to as many descriptors as a valid request/response pair can use. Device-
 * writable buffers are never fetched: the device only writes them.
 * @module
 */
import { REQUEST_MAX_SIZE, RESPONSE_MAX_SIZE } from '../device/limits.js';
import { DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE, ringSizes } from './constants.js';
import type { QueueLayout } from './split-queue.js';

/** A guest physical range. */
export interface GuestRange {
  readonly addr: number;
  readonly len: number;
}

/** Bytes of one device-readable buffer the device can need. */
export const FOOTPRINT_BUFFER_CAP = REQUEST_MAX_SIZE;
/** Bytes of one indirect table worth fetching: one descriptor per byte of a request and its response. */
export const FOOTPRINT_TABLE_CAP = (REQUEST_MAX_SIZE + RESPONSE_MAX_SIZE) * DESCRIPTOR_SIZE;

/** The rings the device reads: the descriptor table and the available ring (never the used ring). */
export function ringFootprint(layout: QueueLayout): GuestRange[] {
  const sizes = ringSizes(layout.size);
  return [
    { addr: layout.descTable, len: sizes.descTable },
    { addr: layout.availRing, len: sizes.availRing },
  ];
}

/**
 * The ranges named by a descriptor table's entries: device-readable buffers (capped) and, when
 * `indirect` was negotiated, indirect tables (capped). Entries with a zero length or an address
 * of 2^53 or more are skipped (the device faults on them without reading).
 */
export function descriptorFootprint(table: Uint8Array, indirect: boolean): { buffers: GuestRange[]; tables: GuestRange[] } {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const buffers: GuestRange[] = [];
  const tables: GuestRange[] = [];
  for (let at = 0; at + DESCRIPTOR_SIZE <= table.length; at += DESCRIPTOR_SIZE) {
    const hi = view.getUint32(at + 4, true);
    if (hi >= 0x200000) continue;
    const addr = hi * 0x1_0000_0000 + view.getUint32(at, true);
    const len = view.getUint32(at + 8, true);
    const flags = view.getUint16(at + 12, true);
    if (len === 0) continue;
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (indirect) tables.push({ addr, len: Math.min(len, FOOTPRINT_TABLE_CAP) });
    } else if (!(flags & VIRTQ_DESC_F_WRITE)) {
      buffers.push({ addr, len: Math.min(len, FOOTPRINT_BUFFER_CAP) });
    }
  }
  return { buffers, tables };
}

/**
 * Sorts ranges and merges those that overlap or lie within `gap` bytes of each other, so that
 * neighbouring rings and buffers are fetched with one read.
 */
export function mergeRanges(ranges: readonly GuestRange[], gap = 0): GuestRange[] {
  const sorted = ranges.filter((r) => r.len > 0).sort((a, b) => a.addr - b.addr);
  const out: { addr: number; len: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.addr <= last.addr + last.len + gap) {
      last.len = Math.max(last.len, r.addr + r.len - last.addr);
    } else {
      out.push({ addr: r.addr, len: r.len });
    }
  }
  return out;
}

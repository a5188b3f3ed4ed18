/**
 * Walking one descriptor chain of a split virtqueue into the guest buffers it names.
 *
 * The walk follows `next` while NEXT is set (a descriptor without NEXT ends the chain and its
 * `next` field is ignored: Linux leaves a stale free-list index there), switches to an indirect
 * table when the head carries INDIRECT, and checks everything the guest controls before the
 * device relies on it: indices against the table size, every buffer and table against guest
 * memory, zero lengths, loops (more descriptors than the table holds), and the rule that
 * device-readable buffers come before device-writable ones. Nothing is read from the buffers
 * themselves and nothing is written.
 * @module
 */
import {
  DESCRIPTOR_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from './constants.js';
import { VirtioTransportError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';

/** One guest buffer: a guest physical address and a length in bytes. */
export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/** A walked chain: its head index and its device-readable then device-writable buffers. */
export interface DescriptorChain {
  readonly head: number;
  readonly readable: readonly Segment[];
  readonly writable: readonly Segment[];
  readonly readableLength: number;
  readonly writableLength: number;
}

export interface ChainContext {
  readonly memory: GuestMemory;
  /** Guest address of the descriptor table (already checked to be inside guest memory). */
  readonly descTable: number;
  readonly queueSize: number;
  /** VIRTIO_RING_F_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
}

function fault(kind: VirtioTransportError['kind'], message: string): VirtioTransportError {
  return new VirtioTransportError(kind, message);
}

/** Walks the chain starting at `head`; returns the chain or the transport fault it contains. */
export function walkChain(ctx: ChainContext, head: number): DescriptorChain | VirtioTransportError {
  const { memory } = ctx;
  let table = ctx.descTable;
  let tableSize = ctx.queueSize;
  let index = head;
  let seen = 0;
  let inIndirect = false;
  const readable: Segment[] = [];
  const writable: Segment[] = [];
  let readableLength = 0;
  let writableLength = 0;

  for (;;) {
    if (index >= tableSize) {
      return fault('descriptor-index', `descriptor index ${index} is outside a table of ${tableSize}`);
    }
    if (++seen > tableSize) {
      return fault('descriptor-loop', `chain from head ${head} is longer than its table of ${tableSize}: a loop`);
    }
    const at = table + DESCRIPTOR_SIZE * index;
    let addr: number;
    let len: number;
    let flags: number;
    let next: number;
    const s = memory.span(at, DESCRIPTOR_SIZE);
    if (s !== undefined) {
      const hi = s.view.getUint32(s.offset + 4, true);
      addr = hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + s.view.getUint32(s.offset, true);
      len = s.view.getUint32(s.offset + 8, true);
      flags = s.view.getUint16(s.offset + 12, true);
      next = s.view.getUint16(s.offset + 14, true);
    } else {
      addr = memory.getU64(at);
      len = memory.getU32(at + 8);
      flags = memory.getU16(at + 12);
      next = memory.getU16(at + 14);
    }

    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (!ctx.indirect) return fault('indirect-descriptor', 'INDIRECT descriptor but VIRTIO_RING_F_INDIRECT_DESC was not negotiated');
      if (inIndirect) return fault('indirect-descriptor', 'nested indirect descriptor table');
      if (seen !== 1 || flags & VIRTQ_DESC_F_NEXT) {
        return fault('indirect-descriptor', 'an indirect descriptor must be the whole chain (no NEXT, at the head)');
      }
      if (len === 0 || len % DESCRIPTOR_SIZE !== 0) {
        return fault('indirect-descriptor', `indirect table length ${len} is not a non-zero multiple of ${DESCRIPTOR_SIZE}`);
      }
      if (!memory.contains(addr, len)) {
        return fault('buffer-address', `indirect table [0x${addr.toString(16)}, +${len}) is outside guest memory`);
      }
      table = addr;
      tableSize = len / DESCRIPTOR_SIZE;
      index = 0;
      seen = 0;
      inIndirect = true;
      continue;
    }

    if (len === 0) return fault('zero-length-descriptor', `descriptor ${index} has length 0`);
    if (!memory.contains(addr, len)) {
      return fault('buffer-address', `buffer [0x${addr.toString(16)}, +${len}) of descriptor ${index} is outside guest memory`);
    }
    if (flags & VIRTQ_DESC_F_WRITE) {
      writable.push({ addr, len });
      writableLength += len;
    } else {
      if (writable.length > 0) return fault('descriptor-order', `device-readable descriptor ${index} after a device-writable one`);
      readable.push({ addr, len });
      readableLength += len;
    }
    if (!(flags & VIRTQ_DESC_F_NEXT)) break;
    index = next;
  }
  return { head, readable, writable, readableLength, writableLength };
}

/**
 * Copies a chain's device-readable bytes out of guest memory (ranges already checked), into
 * `scratch` when it is large enough (the result is then a view of it), else into a new array.
 */
export function gatherReadable(memory: GuestMemory, chain: DescriptorChain, scratch?: Uint8Array): Uint8Array {
  const length = chain.readableLength;
  const out = scratch !== undefined && length <= scratch.length ? scratch.subarray(0, length) : new Uint8Array(length);
  let o = 0;
  for (const s of chain.readable) {
    memory.copyOut(s.addr, out, o, s.len);
    o += s.len;
  }
  return out;
}

/** Writes `data` across a chain's device-writable buffers, never past them; returns bytes written. */
export function scatterWritable(memory: GuestMemory, chain: DescriptorChain, data: Uint8Array): number {
  const first = chain.writable[0];
  if (first !== undefined && data.length <= first.len) {
    memory.write(first.addr, data);
    return data.length;
  }
  let o = 0;
  for (const s of chain.writable) {
    if (o >= data.length) break;
    const n = Math.min(s.len, data.length - o);
    memory.write(s.addr, data.subarray(o, o + n));
    o += n;
  }
  return o;
}

/**
 * The client's DMA map: which guest physical ranges the device may read and write, as the client
 * announced them with DMA_MAP and DMA_UNMAP. Each mapping gets a local copy ("mirror") of its
 * bytes, allocated lazily by the runtime (an untouched page costs nothing), in pieces of at most
 * 1 GiB; the server fetches into the mirror what the device is about to read and writes back
 * what it wrote, with DMA_READ / DMA_WRITE messages.
 *
 * Rules from the specification: a map over an existing range fails with EEXIST, an unmap must
 * name a mapping exactly (ENOENT otherwise) or use the unmap-all flag; the number of mappings is
 * bounded by what the server advertised (ENOSPC beyond), and their total size by 1 TiB (ENOMEM).
 * @module
 */
import type { GuestMemoryRegion } from '../virtio/guest-memory.js';
import type { GuestRange } from '../virtio/queue-footprint.js';
import { EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_UNMAP_FLAG_ALL } from './protocol.js';

/** Largest piece of one mirror array. */
const MIRROR_PIECE = 1 << 30;
/** Guest addresses must stay below 2^53 (the device model's limit). */
const ADDRESS_LIMIT = 2n ** 53n;
/** Most bytes mapped at once (address space reserved for mirrors, committed only when touched). */
export const DMA_MAPPED_LIMIT = 2 ** 40;

export interface DmaMapping {
  readonly addr: number;
  readonly size: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly pieces: readonly GuestMemoryRegion[];
}

export class DmaMap {
  private mappings: DmaMapping[] = [];
  /** Bumped on every change, so users can tell their view is stale. */
  generation = 0;

  constructor(readonly maxMappings: number) {}

  /** Bytes mapped in total. */
  get mappedBytes(): number {
    return this.mappings.reduce((n, m) => n + m.size, 0);
  }

  /** Number of mappings in force. */
  get size(): number {
    return this.mappings.length;
  }

  /** DMA_MAP; returns 0 or an errno. */
  map(address: bigint, size: bigint, flags: number): number {
    if ((flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) return EINVAL;
    if (size <= 0n || address < 0n || address + size > ADDRESS_LIMIT) return EINVAL;
    const addr = Number(address);
    const len = Number(size);
    for (const m of this.mappings) if (addr < m.addr + m.size && m.addr < addr + len) return EEXIST;
    if (this.mappings.length >= this.maxMappings) return ENOSPC;
    if (this.mappedBytes + len > DMA_MAPPED_LIMIT) return ENOMEM;
    const pieces: GuestMemoryRegion[] = [];
    try {
      for (let at = 0; at < len; at += MIRROR_PIECE) {
        pieces.push({ guestAddress: BigInt(addr + at), bytes: new Uint8Array(Math.min(MIRROR_PIECE, len - at)) });
      }
    } catch {
      return ENOMEM; // the runtime would not reserve the mirror
    }
    this.mappings.push({ addr, size: len, readable: (flags & VFIO_DMA_MAP_FLAG_READ) !== 0, writable: (flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0, pieces });
    this.mappings.sort((a, b) => a.addr - b.addr);
    this.generation++;
    return 0;
  }

  /** DMA_UNMAP; returns 0 or an errno. */
  unmap(address: bigint, size: bigint, flags: number): number {
    if (flags === VFIO_DMA_UNMAP_FLAG_ALL) {
      if (address !== 0n || size !== 0n) return EINVAL;
      this.clear();
      return 0;
    }
    if (flags !== 0) return EINVAL;
    const i = this.mappings.findIndex((m) => BigInt(m.addr) === address && BigInt(m.size) === size);
    if (i < 0) return ENOENT;
    this.mappings.splice(i, 1);
    this.generation++;
    return 0;
  }

  /** Drops every mapping (the client went away, or unmapped all). */
  clear(): void {
    if (this.mappings.length > 0) this.generation++;
    this.mappings = [];
  }

  /** The mirror pieces of every mapping, as guest memory regions. */
  regions(): GuestMemoryRegion[] {
    return this.mappings.flatMap((m) => m.pieces);
  }

  /** The parts of `range` that lie in mappings with the given permission. */
  clip(range: GuestRange, permission: 'readable' | 'writable'): GuestRange[] {
    const out: GuestRange[] = [];
    const end = range.addr + range.len;
    for (const m of this.mappings) {
      if (!m[permission]) continue;
      const a = Math.max(range.addr, m.addr);
      const b = Math.min(end, m.addr + m.size);
      if (a < b) out.push({ addr: a, len: b - a });
    }
    return out;
  }
}

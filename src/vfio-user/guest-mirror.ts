/**
 * The server's copy of guest memory, kept exact where it matters: before the device runs, the
 * ranges it may read are fetched from the client (DMA_READ); every write the device makes is
 * recorded (in order, adjacent writes merged) and written back (DMA_WRITE) before the interrupt
 * that announces it. Reads and writes are split at the negotiated transfer size and clipped to
 * the mappings that allow them; a range outside every mapping is not touched (the device sees it
 * as outside guest memory anyway).
 * @module
 */
import { GuestMemory } from '../virtio/guest-memory.js';
import { type GuestRange, mergeRanges } from '../virtio/queue-footprint.js';
import type { DmaMap } from './dma-map.js';

/** How the mirror reaches the client's memory (DMA_READ / DMA_WRITE round trips). */
export interface DmaIo {
  read(addr: number, length: number): Promise<Uint8Array>;
  write(addr: number, data: Uint8Array): Promise<void>;
}

/** Ranges closer than this are fetched as one read. */
const MERGE_GAP = 512;

export class GuestMirror {
  private dirty: { addr: number; len: number }[] = [];
  private view: GuestMemory | null = null;
  private viewGeneration = -1;
  /** Bytes moved, for the curious (tests, logs). */
  readonly stats = { reads: 0, readBytes: 0, writes: 0, writeBytes: 0, skippedWrites: 0 };

  constructor(
    private readonly dma: DmaMap,
    private readonly io: DmaIo,
    private readonly maxTransfer: number,
  ) {}

  /** The dirty-tracking callback to give the device. */
  readonly onWrite = (addr: number, len: number): void => {
    const last = this.dirty[this.dirty.length - 1];
    if (last !== undefined && addr === last.addr + last.len) last.len += len;
    else if (last !== undefined && addr >= last.addr && addr + len <= last.addr + last.len) return;
    else this.dirty.push({ addr, len });
  };

  private memory(): GuestMemory | null {
    if (this.viewGeneration !== this.dma.generation) {
      const regions = this.dma.regions();
      this.view = regions.length > 0 ? new GuestMemory(regions) : null;
      this.viewGeneration = this.dma.generation;
    }
    return this.view;
  }

  /** Bytes of the copy (zeros where nothing was fetched); undefined outside every mapping. */
  read(addr: number, length: number): Uint8Array | undefined {
    return this.memory()?.read(addr, length);
  }

  /** Fetches `ranges` (clipped to readable mappings, merged, split) into the copy. */
  async fetch(ranges: readonly GuestRange[]): Promise<void> {
    const memory = this.memory();
    if (memory === null) return;
    const parts = mergeRanges(ranges.flatMap((r) => this.dma.clip(r, 'readable')), MERGE_GAP);
    const jobs: Promise<void>[] = [];
    for (const p of parts) {
      for (let at = p.addr; at < p.addr + p.len; at += this.maxTransfer) {
        const len = Math.min(this.maxTransfer, p.addr + p.len - at);
        this.stats.reads++;
        this.stats.readBytes += len;
        jobs.push(this.io.read(at, len).then((bytes) => void memory.write(at, bytes)));
      }
    }
    await Promise.all(jobs);
  }

  /**
   * Sends everything the device wrote since the last call, in write order, and resolves when the
   * client has applied all of it. Writes outside writable mappings are dropped and counted.
   */
  writeBack(): Promise<void> {
    const ranges = this.dirty;
    this.dirty = [];
    const memory = this.memory();
    if (ranges.length === 0 || memory === null) return Promise.resolve();
    const jobs: Promise<void>[] = [];
    for (const r of ranges) {
      const allowed = this.dma.clip(r, 'writable');
      const allowedBytes = allowed.reduce((n, a) => n + a.len, 0);
      if (allowedBytes < r.len) this.stats.skippedWrites++;
      for (const a of allowed) {
        for (let at = a.addr; at < a.addr + a.len; at += this.maxTransfer) {
          const len = Math.min(this.maxTransfer, a.addr + a.len - at);
          const bytes = memory.read(at, len);
          if (bytes === undefined) continue;
          this.stats.writes++;
          this.stats.writeBytes += len;
          jobs.push(this.io.write(at, bytes));
        }
      }
    }
    return Promise.all(jobs).then(() => undefined);
  }

  /** Forgets pending writes (the client went away). */
  discard(): void {
    this.dirty = [];
  }
}

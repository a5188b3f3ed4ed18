/**
 * One split virtqueue seen from the device: where its three rings live, how far the device has
 * consumed the available ring and filled the used ring, and when the driver wants an interrupt.
 *
 * Layout (virtio 1.x, little-endian): descriptor table of `size` 16-byte entries; available
 * ring `flags u16, idx u16, ring[size] u16, used_event u16`; used ring `flags u16, idx u16,
 * ring[size] {id u32, len u32}, avail_event u16`. With VIRTIO_RING_F_EVENT_IDX the device
 * interrupts only when the used index passes the driver's used_event, and writes avail_event
 * to ask for a kick on every new buffer; without it, VIRTQ_AVAIL_F_NO_INTERRUPT suppresses
 * interrupts. The device never sets VIRTQ_USED_F_NO_NOTIFY.
 * @module
 */
import { MAX_QUEUE_SIZE, VIRTQ_AVAIL_F_NO_INTERRUPT, ringSizes } from './constants.js';
import { type ChainContext, type DescriptorChain, walkChain } from './descriptor-chain.js';
import { VirtioTransportError } from './errors.js';
import type { GuestMemory } from './guest-memory.js';

/** A queue's guest-programmed configuration, addresses as numbers (NaN/Infinity = unreachable). */
export interface QueueLayout {
  readonly size: number;
  readonly descTable: number;
  readonly availRing: number;
  readonly usedRing: number;
}

/** The device's progress on a queue: what a snapshot must carry. */
export interface QueuePositions {
  /** Next available-ring slot to consume (free-running u16). */
  readonly lastAvail: number;
  /** Next used-ring slot to fill (free-running u16), published as used.idx. */
  readonly usedIdx: number;
  /** used.idx when the device last decided about an interrupt; null before the first decision. */
  readonly signalledUsed: number | null;
}

export interface QueueFeatures {
  readonly eventIdx: boolean;
  readonly indirect: boolean;
}

export const INITIAL_POSITIONS: QueuePositions = { lastAvail: 0, usedIdx: 0, signalledUsed: null };

/** Checks a layout against the device's maximum and guest memory; null when usable. */
export function checkLayout(memory: GuestMemory, layout: QueueLayout, maxSize: number): VirtioTransportError | null {
  const { size } = layout;
  if (!Number.isInteger(size) || size < 1 || size > Math.min(maxSize, MAX_QUEUE_SIZE) || (size & (size - 1)) !== 0) {
    return new VirtioTransportError('queue-config', `queue size ${size} is not a power of two in [1, ${maxSize}]`);
  }
  const sizes = ringSizes(size);
  for (const [name, addr, len] of [
    ['descriptor table', layout.descTable, sizes.descTable],
    ['available ring', layout.availRing, sizes.availRing],
    ['used ring', layout.usedRing, sizes.usedRing],
  ] as const) {
    if (!memory.contains(addr, len)) {
      return new VirtioTransportError('ring-address', `${name} [0x${addr.toString(16)}, +${len}) is outside guest memory`);
    }
  }
  return null;
}

export class SplitQueue {
  private lastAvail: number;
  private usedIdx: number;
  private signalledUsed: number | null;
  private readonly chains: ChainContext;

  /** `layout` must have passed {@link checkLayout}. */
  constructor(
    private readonly memory: GuestMemory,
    readonly layout: QueueLayout,
    private readonly features: QueueFeatures,
    positions: QueuePositions = INITIAL_POSITIONS,
  ) {
    this.lastAvail = positions.lastAvail & 0xffff;
    this.usedIdx = positions.usedIdx & 0xffff;
    this.signalledUsed = positions.signalledUsed === null ? null : positions.signalledUsed & 0xffff;
    this.chains = { memory, descTable: layout.descTable, queueSize: layout.size, indirect: features.indirect };
  }

  positions(): QueuePositions {
    return { lastAvail: this.lastAvail, usedIdx: this.usedIdx, signalledUsed: this.signalledUsed };
  }

  /** How many heads the driver has made available past what the device consumed. */
  available(): number | VirtioTransportError {
    const idx = this.memory.getU16(this.layout.availRing + 2);
    const n = (idx - this.lastAvail) & 0xffff;
    if (n > this.layout.size) {
      return new VirtioTransportError('avail-index', `avail.idx moved from ${this.lastAvail} to ${idx}, more than the queue size ${this.layout.size}`);
    }
    return n;
  }

  /** Consumes the next available head and walks its chain (the caller checked available() > 0). */
  pop(): DescriptorChain | VirtioTransportError {
    const { size, availRing } = this.layout;
    const head = this.memory.getU16(availRing + 4 + 2 * (this.lastAvail & (size - 1)));
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    return walkChain(this.chains, head);
  }

  /** Fills the next used-ring entry; the driver sees it after {@link publish}. */
  push(head: number, len: number): void {
    const at = this.layout.usedRing + 4 + 8 * (this.usedIdx & (this.layout.size - 1));
    this.memory.setU32(at, head);
    this.memory.setU32(at + 4, len);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
  }

  /** Makes pushed entries visible: used.idx, then (with EVENT_IDX) avail_event. */
  publish(): void {
    this.memory.setU16(this.layout.usedRing + 2, this.usedIdx);
    this.requestKicks();
  }

  /** With EVENT_IDX, asks to be kicked for any buffer past those consumed (avail_event). */
  requestKicks(): void {
    if (this.features.eventIdx) this.memory.setU16(this.layout.usedRing + 4 + 8 * this.layout.size, this.lastAvail);
  }

  /** Whether the driver wants an interrupt for what was published since the last decision. */
  shouldInterrupt(): boolean {
    const now = this.usedIdx;
    if (!this.features.eventIdx) {
      this.signalledUsed = now;
      return (this.memory.getU16(this.layout.availRing) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const old = this.signalledUsed;
    this.signalledUsed = now;
    if (old === null) return true;
    const usedEvent = this.memory.getU16(this.layout.availRing + 4 + 2 * this.layout.size);
    // vring_need_event: interrupt when used_event lies in (old, now].
    return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
  }
}

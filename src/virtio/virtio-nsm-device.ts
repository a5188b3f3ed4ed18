/**
 * The virtio-nsm device model: what a VMM plugs into a virtio transport (MMIO or PCI) so that
 * an unchanged guest `nsm` driver talks to an {@link NsmDevice}.
 *
 * The VMM owns the transport registers and guest memory. It asks this model for the device
 * id, queue size, features and (empty) config space; when the driver sets DRIVER_OK it calls
 * {@link VirtioNsmDevice.activate} with guest memory, the queue addresses and an interrupt
 * callback; on each queue notification it calls {@link VirtioNsmDevice.queueNotify}.
 *
 * Each request is a pair of chains, as the Linux driver sends them: a device-readable chain
 * with the CBOR request, then a device-writable chain offering exactly 0x3000 bytes. The pair
 * is answered with two used entries in that order (length 0, then the response length) and one
 * interrupt. Pairs are served one at a time in ring order, so requests complete in order even
 * while an attestation is being signed; the VMM's thread only ever waits on promises. A
 * malformed pair (see {@link VirtioTransportError}) sets DEVICE_NEEDS_RESET, raises a config
 * interrupt and writes nothing; malformed CBOR is not a transport fault and is answered by the
 * NSM with an Error response.
 * @module
 */
import type { AttesterFactory } from '../device/attester.js';
import { NsmDevice } from '../device/nsm-device.js';
import { NsmDeviceGoneError } from '../device/faults.js';
import { REQUEST_MAX_SIZE, RESPONSE_MAX_SIZE } from '../device/limits.js';
import {
  DEFAULT_QUEUE_SIZE,
  MAX_QUEUE_SIZE,
  STATUS_ACKNOWLEDGE,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_NSM,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
} from './constants.js';
import { type DescriptorChain, gatherReadable, scatterWritable } from './descriptor-chain.js';
import { VirtioSnapshotError, VirtioStateError, VirtioTransportError } from './errors.js';
import { GuestMemory, type GuestMemoryInput, type GuestWriteObserver } from './guest-memory.js';
import { type DeviceSnapshot, decodeSnapshot, encodeSnapshot } from './snapshot.js';
import { INITIAL_POSITIONS, type QueueLayout, type QueuePositions, SplitQueue, checkLayout } from './split-queue.js';

/** A queue as the guest driver programmed it (guest physical addresses). */
export interface VirtioQueueConfig {
  readonly size: number;
  readonly descTable: bigint;
  readonly availRing: bigint;
  readonly usedRing: bigint;
}

export type VirtioInterruptKind = 'vring' | 'config';

export interface VirtioActivation {
  /** Guest memory: one array (guest address 0 = index 0) or regions at guest addresses. */
  readonly memory: GuestMemoryInput;
  /** The one queue. Optional after {@link VirtioNsmDevice.restore}: the snapshot holds it. */
  readonly queues?: readonly VirtioQueueConfig[];
  /** Raised with 'vring' after used buffers were added, 'config' when the device needs a reset. */
  readonly interrupt: (kind: VirtioInterruptKind) => void;
  /**
   * Optional dirty tracking: told of every guest range the device writes (response bytes, used
   * entries, used.idx, avail_event), in write order and before the interrupt that follows. For
   * live migration, or for a transport whose `memory` is a local copy of guest RAM that must be
   * written back (vfio-user without shared memory).
   */
  readonly onWrite?: GuestWriteObserver;
}

export interface VirtioNsmDeviceOptions {
  /** Largest queue size offered (a power of two; default 2, as QEMU). */
  readonly queueMaxSize?: number;
  /**
   * Also serve a single chain holding the request (readable) and a 0x3000-byte response buffer
   * (writable), answered with one used entry. Default false: such a chain is a transport fault,
   * as under QEMU.
   */
  readonly acceptSingleChain?: boolean;
  /** The caller's name for the CA behind the attester (for example a CA directory), kept in snapshots. */
  readonly caReference?: string | null;
}

export interface VirtioRestoreOptions {
  /** Clock for the rebuilt NSM (default Date.now). */
  readonly clock?: () => number;
  /** Attester for the rebuilt NSM (default: the library's); pick it from the snapshot's caReference. */
  readonly attester?: AttesterFactory;
}

/** What {@link VirtioNsmDevice.inspectSnapshot} reveals before a restore. */
export interface VirtioSnapshotInfo {
  readonly moduleId: string;
  readonly caReference: string | null;
  readonly activated: boolean;
  readonly needsReset: boolean;
}

/** Transport features offered: virtio 1.x, indirect descriptors and event-index suppression. */
export const VIRTIO_NSM_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_INDIRECT_DESC | VIRTIO_RING_F_EVENT_IDX;

const ACTIVE_STATUS = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
const DONE: Promise<void> = Promise.resolve();

/** A popped request waiting for the NSM: its chain(s) and the request bytes. */
interface Work {
  readonly request: DescriptorChain;
  /** The response chain; the request chain itself in single-chain mode. */
  readonly response: DescriptorChain;
  readonly single: boolean;
  readonly bytes: Uint8Array;
}

function address(v: unknown, name: string): number {
  if (typeof v === 'bigint') return v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Infinity;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  throw new TypeError(`queue ${name} must be a bigint guest address`);
}

function layoutOf(q: VirtioQueueConfig | undefined): QueueLayout {
  if (typeof q !== 'object' || q === null || typeof q.size !== 'number') {
    throw new TypeError('queues must be [{size, descTable, availRing, usedRing}]');
  }
  return {
    size: q.size,
    descTable: address(q.descTable, 'descTable'),
    availRing: address(q.availRing, 'availRing'),
    usedRing: address(q.usedRing, 'usedRing'),
  };
}

export class VirtioNsmDevice {
  /** Virtio device id 33. */
  readonly deviceType = VIRTIO_ID_NSM;
  /** One queue. */
  readonly queueMaxSizes: readonly number[];
  /** Offered feature bits: transport and ring features only (the NSM has none of its own). */
  readonly deviceFeatures = VIRTIO_NSM_FEATURES;
  readonly acceptSingleChain: boolean;
  readonly caReference: string | null;

  private acked = 0n;
  private statusBits = 0;
  private fault: VirtioTransportError | null = null;
  private memory: GuestMemory | null = null;
  private queue: SplitQueue | null = null;
  private interrupt: ((kind: VirtioInterruptKind) => void) | null = null;
  private onWrite: GuestWriteObserver | null = null;
  /** Queue layout and positions from a snapshot, waiting for activate(). */
  private restored: { layout: VirtioQueueConfig; positions: QueuePositions } | null = null;
  /** Bumped by reset(): work from an older generation is dropped. */
  private generation = 0;
  private running: Promise<void> | null = null;
  private pumping = false;
  private inFlight = false;
  /**
   * Where requests are copied out of guest memory. Reusing it is safe because one request at a
   * time is with the NSM, which reads the bytes (or copies what it keeps) before it answers.
   * (A fresh small array per request would cost more: the decoder's DataView forces V8 to move
   * it off the JS heap.) reset() replaces it, so an abandoned request can never see new bytes.
   */
  private scratch = new Uint8Array(REQUEST_MAX_SIZE);

  constructor(
    readonly nsm: NsmDevice,
    options: VirtioNsmDeviceOptions = {},
  ) {
    const max = options.queueMaxSize ?? DEFAULT_QUEUE_SIZE;
    if (!Number.isInteger(max) || max < 1 || max > MAX_QUEUE_SIZE || (max & (max - 1)) !== 0) {
      throw new RangeError(`queueMaxSize must be a power of two in [1, ${MAX_QUEUE_SIZE}]`);
    }
    this.queueMaxSizes = Object.freeze([max]);
    this.acceptSingleChain = options.acceptSingleChain ?? false;
    this.caReference = options.caReference ?? null;
  }

  // ---- transport-facing registers -----------------------------------------------------------------

  /** Features the driver acknowledged (limited to the offered ones). */
  get driverFeatures(): bigint {
    return this.acked;
  }

  /**
   * Records the driver's features. Returns false (and keeps the previous set) when it asks for
   * a bit that was not offered or the device is already active: the transport should then
   * refuse FEATURES_OK.
   */
  ackFeatures(bits: bigint): boolean {
    if (typeof bits !== 'bigint') throw new TypeError('feature bits are a bigint');
    if (this.memory !== null || (bits & ~this.deviceFeatures) !== 0n) return false;
    this.acked = bits;
    return true;
  }

  /** The device has no config space: every read is zeros. */
  readConfig(offset: number, length: number): Uint8Array {
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0) {
      throw new RangeError('config offset and length must be non-negative integers');
    }
    return new Uint8Array(length);
  }

  /** Writes to the (absent) config space are ignored. */
  writeConfig(_offset: number, _data: Uint8Array): void {}

  /** The device status register: what the driver wrote (or DRIVER_OK after activate), plus DEVICE_NEEDS_RESET. */
  get status(): number {
    return this.statusBits;
  }

  /** A driver write to the status register; 0 resets the device. DEVICE_NEEDS_RESET is the device's bit. */
  writeStatus(value: number): void {
    if (value === 0) return this.reset();
    this.statusBits = (value & 0xff & ~STATUS_DEVICE_NEEDS_RESET) | (this.statusBits & STATUS_DEVICE_NEEDS_RESET);
  }

  /** The transport fault that set DEVICE_NEEDS_RESET, or null. */
  get transportError(): VirtioTransportError | null {
    return this.fault;
  }

  /** True while a request is with the NSM (a snapshot must wait: see {@link drain}). */
  get busy(): boolean {
    return this.inFlight;
  }

  // ---- lifecycle ----------------------------------------------------------------------------------

  /**
   * Starts the device on the driver's queue. Throws TypeError / RangeError only for a malformed
   * argument (a VMM mistake); a queue the guest programmed badly (size, ring outside memory) is
   * a transport fault: DEVICE_NEEDS_RESET and a config interrupt.
   */
  activate(activation: VirtioActivation): void {
    const { memory: input, interrupt } = activation;
    if (this.memory !== null) throw new VirtioStateError('device is already active (reset it first)');
    if (typeof interrupt !== 'function') throw new TypeError('interrupt must be a function');
    const onWrite = activation.onWrite;
    if (onWrite !== undefined && typeof onWrite !== 'function') throw new TypeError('onWrite must be a function');
    const memory = new GuestMemory(input, onWrite ?? null);
    const queues = activation.queues;
    let layout: QueueLayout;
    let positions = INITIAL_POSITIONS;
    if (queues === undefined) {
      if (this.restored === null) throw new TypeError('queues are required (only a restored device has them already)');
      layout = layoutOf(this.restored.layout);
      positions = this.restored.positions;
    } else {
      if (!Array.isArray(queues) || queues.length !== 1) throw new TypeError('virtio-nsm has exactly one queue');
      layout = layoutOf(queues[0]);
      if (this.restored !== null) {
        const r = layoutOf(this.restored.layout);
        if (r.size !== layout.size || r.descTable !== layout.descTable || r.availRing !== layout.availRing || r.usedRing !== layout.usedRing) {
          throw new RangeError('queue differs from the restored snapshot');
        }
        positions = this.restored.positions;
      }
    }
    this.restored = null;
    this.memory = memory;
    this.onWrite = onWrite ?? null;
    this.interrupt = interrupt;
    this.statusBits |= ACTIVE_STATUS;
    if (this.fault !== null) return; // restored broken: stays broken until reset
    const problem = checkLayout(memory, layout, this.queueMaxSizes[0]!);
    if (problem !== null) return void this.fail(problem);
    this.queue = new SplitQueue(memory, layout, {
      eventIdx: (this.acked & VIRTIO_RING_F_EVENT_IDX) !== 0n,
      indirect: (this.acked & VIRTIO_RING_F_INDIRECT_DESC) !== 0n,
    }, positions);
  }

  /**
   * Returns the model and the NSM to power-on: no features, status 0, not active, queue
   * positions zero, boot PCRs and locks. A request still with the NSM is abandoned (its answer is
   * never written).
   */
  reset(): void {
    this.generation++;
    this.running = null;
    this.pumping = false;
    if (this.inFlight) this.scratch = new Uint8Array(REQUEST_MAX_SIZE);
    this.inFlight = false;
    this.acked = 0n;
    this.statusBits = 0;
    this.fault = null;
    this.memory = null;
    this.queue = null;
    this.interrupt = null;
    this.onWrite = null;
    this.restored = null;
    this.nsm.reset();
  }

  /**
   * The VMM's memory map changed while the device is active (memory hotplug, a region removed):
   * later accesses use `memory`, with the same dirty tracking. The queue keeps its positions; if
   * a ring is no longer inside guest memory that is a `ring-address` transport fault. Call it
   * while nothing is being served (`await drain()` first): throws {@link VirtioStateError} when
   * busy or not active.
   */
  replaceMemory(memory: GuestMemoryInput): void {
    if (this.memory === null) throw new VirtioStateError('device is not active');
    if (this.running !== null) throw new VirtioStateError('a request is being served: await drain() before replaceMemory()');
    const next = new GuestMemory(memory, this.onWrite);
    this.memory = next;
    const queue = this.queue;
    if (queue === null || this.fault !== null) return;
    const problem = checkLayout(next, queue.layout, this.queueMaxSizes[0]!);
    if (problem !== null) return void this.fail(problem);
    this.queue = new SplitQueue(next, queue.layout, {
      eventIdx: (this.acked & VIRTIO_RING_F_EVENT_IDX) !== 0n,
      indirect: (this.acked & VIRTIO_RING_F_INDIRECT_DESC) !== 0n,
    }, queue.positions());
  }

  // ---- the queue -------------------------------------------------------------------------------------

  /**
   * A driver kick on queue `index`. Serves every available request, in order, and resolves once
   * the last one's used entries are published and its interrupt raised. Never rejects for
   * anything the guest did; notifications for other queues, before activation or after a fault
   * are ignored. Rejects only if the VMM's interrupt callback threw.
   */
  queueNotify(index: number): Promise<void> {
    if (index !== 0 || this.queue === null || this.fault !== null) return DONE;
    if (this.running !== null) return this.running;
    const p = this.pump(this.generation);
    if (this.pumping) this.running = p;
    return p;
  }

  /** Resolves when nothing is being served (then {@link snapshot} may be taken). */
  async drain(): Promise<void> {
    while (this.running !== null) await this.running.catch(() => undefined);
  }

  private async pump(generation: number): Promise<void> {
    this.pumping = true;
    let callbackError: unknown = null;
    try {
      for (;;) {
        const work = this.next();
        if (work === null) break;
        this.inFlight = true;
        // A device that disappeared (an injected fault) never answers: the request stays
        // unanswered, as with dead hardware, and the guest driver times out.
        const response = await this.nsm.handleRaw(work.bytes).catch((e: unknown) => {
          if (e instanceof NsmDeviceGoneError) return null;
          throw e;
        });
        if (generation !== this.generation) return;
        this.inFlight = false;
        if (response === null) break;
        callbackError ??= this.complete(work, response);
      }
    } finally {
      if (generation === this.generation) {
        this.pumping = false;
        this.running = null;
      }
    }
    if (callbackError !== null) throw callbackError;
  }

  /** Pops the next request (pair), or null when there is none or the queue is faulty. */
  private next(): Work | null {
    const queue = this.queue;
    if (queue === null || this.fault !== null) return null;
    const available = queue.available();
    if (available instanceof VirtioTransportError) return this.fail(available);
    if (available === 0) {
      queue.requestKicks();
      return null;
    }
    const request = queue.pop();
    if (request instanceof VirtioTransportError) return this.fail(request);
    if (request.readableLength === 0) {
      return this.fail(new VirtioTransportError('zero-length-request', 'the request chain has no device-readable bytes'));
    }
    if (request.writableLength > 0) {
      if (this.acceptSingleChain && request.writableLength === RESPONSE_MAX_SIZE) {
        return { request, response: request, single: true, bytes: gatherReadable(this.memory!, request, this.scratch) };
      }
      return this.fail(new VirtioTransportError('request-direction', 'the request chain holds device-writable buffers'));
    }
    if (available < 2) {
      return this.fail(new VirtioTransportError('missing-response', 'no response chain after the request chain'));
    }
    const response = queue.pop();
    if (response instanceof VirtioTransportError) return this.fail(response);
    if (response.readableLength > 0) {
      return this.fail(new VirtioTransportError('response-direction', 'the response chain holds device-readable buffers'));
    }
    if (response.writableLength !== RESPONSE_MAX_SIZE) {
      return this.fail(new VirtioTransportError('response-size', `the response chain offers ${response.writableLength} bytes, not 0x3000`));
    }
    return { request, response, single: false, bytes: gatherReadable(this.memory!, request, this.scratch) };
  }

  /** Writes the response, publishes the used entries and interrupts; returns a callback error. */
  private complete(work: Work, response: Uint8Array): unknown {
    const queue = this.queue!;
    const written = scatterWritable(this.memory!, work.response, response);
    if (!work.single) queue.push(work.request.head, 0);
    queue.push(work.response.head, written);
    queue.publish();
    return queue.shouldInterrupt() ? this.raise('vring') : null;
  }

  private fail(error: VirtioTransportError): null {
    this.fault = error;
    this.statusBits |= STATUS_DEVICE_NEEDS_RESET;
    const e = this.raise('config');
    if (e !== null) throw e;
    return null;
  }

  /** Calls the VMM's interrupt callback; returns what it threw, or null. */
  private raise(kind: VirtioInterruptKind): unknown {
    try {
      this.interrupt?.(kind);
      return null;
    } catch (e) {
      return e ?? new Error('interrupt callback threw');
    }
  }

  // ---- snapshots -------------------------------------------------------------------------------------

  /**
   * Serializes the whole device (see snapshot.ts). Take it with the vCPUs paused and after
   * `await drain()`: while a request is with the NSM this throws {@link VirtioStateError}.
   */
  snapshot(): Uint8Array {
    if (this.inFlight) throw new VirtioStateError('a request is in flight: await drain() before snapshot()');
    const boot = this.nsm.bootOptions();
    const state = this.nsm.exportState();
    let queue: DeviceSnapshot['queue'] = null;
    if (this.queue !== null) {
      const l = this.queue.layout;
      queue = { size: l.size, descTable: BigInt(l.descTable), availRing: BigInt(l.availRing), usedRing: BigInt(l.usedRing), ...this.queue.positions() };
    } else if (this.restored !== null) {
      queue = { ...this.restored.layout, ...this.restored.positions };
    }
    return encodeSnapshot({
      status: this.statusBits,
      driverFeatures: this.acked,
      queueMaxSize: this.queueMaxSizes[0]!,
      acceptSingleChain: this.acceptSingleChain,
      caReference: this.caReference,
      queue,
      transportError: this.fault && { kind: this.fault.kind, message: this.fault.message },
      nsm: {
        moduleId: this.nsm.moduleId,
        seed: boot.seed ?? null,
        bootPcrs: boot.pcrs,
        pcrs: state.pcrs,
        locks: state.locks,
        randomPositions: state.randomPositions,
      },
    });
  }

  /** Reads a snapshot's identity (to choose the attester for {@link restore}). */
  static inspectSnapshot(bytes: Uint8Array): VirtioSnapshotInfo {
    const s = decodeSnapshot(bytes);
    return {
      moduleId: s.nsm.moduleId,
      caReference: s.caReference,
      activated: s.queue !== null,
      needsReset: s.transportError !== null,
    };
  }

  /**
   * Rebuilds a device from {@link snapshot} bytes, with the clock and attester the caller
   * supplies (they are not data). If the snapshot was taken while active, call
   * `activate({memory, interrupt})` next; the queue comes from the snapshot. Throws
   * VirtioSnapshotError for bytes that are not a readable snapshot.
   */
  static restore(bytes: Uint8Array, options: VirtioRestoreOptions = {}): VirtioNsmDevice {
    const s = decodeSnapshot(bytes);
    const n = s.nsm;
    let nsm: NsmDevice;
    try {
      nsm = new NsmDevice({
        boot: 'bare', // the snapshot holds every boot PCR value
        moduleId: n.moduleId,
        ...(n.seed === null ? {} : { seed: n.seed }),
        pcrs: n.bootPcrs,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.attester ? { attester: options.attester } : {}),
      });
      nsm.importState({ pcrs: n.pcrs, locks: n.locks, randomPositions: n.randomPositions });
    } catch (e) {
      throw new VirtioSnapshotError(`not a virtio-nsm snapshot: NSM state rejected (${(e as Error).message})`);
    }
    let device: VirtioNsmDevice;
    try {
      device = new VirtioNsmDevice(nsm, { queueMaxSize: s.queueMaxSize, acceptSingleChain: s.acceptSingleChain, caReference: s.caReference });
    } catch (e) {
      throw new VirtioSnapshotError(`not a virtio-nsm snapshot: ${(e as Error).message}`);
    }
    if ((s.driverFeatures & ~device.deviceFeatures) !== 0n) throw new VirtioSnapshotError('not a virtio-nsm snapshot: unknown feature bits');
    device.acked = s.driverFeatures;
    device.statusBits = s.status;
    if (s.transportError !== null) device.fault = new VirtioTransportError(s.transportError.kind, s.transportError.message);
    if (s.queue !== null) {
      const { size, descTable, availRing, usedRing, ...positions } = s.queue;
      device.restored = { layout: { size, descTable, availRing, usedRing }, positions };
    }
    return device;
  }
}

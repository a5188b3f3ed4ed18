/**
 * A vfio-user server for one PCI function, the virtio-nsm device behind {@link VirtioPciFunction}:
 * it answers the client's commands (version negotiation, device, region and interrupt info,
 * DMA map bookkeeping, interrupt eventfds, region reads and writes, reset) and serves the queue
 * with guest memory reached through DMA_READ / DMA_WRITE messages (see {@link GuestMirror}).
 *
 * Runtime-agnostic: bytes in, bytes out. The socket and the file descriptors live behind a
 * {@link VfioUserLink} (in Node: src/node/vfio-user-server.ts and its native relay). File
 * descriptors are opaque handles here; the link signals or closes them on request.
 *
 * Ordering: commands are handled one by one in arrival order and every register effect is
 * applied before the next command is read, so a posted (no-reply) write is never overtaken. A
 * queue kick only starts work: the server fetches what the device will read, runs the device,
 * writes back what it wrote and then signals the interrupt, while further commands keep being
 * answered (a vCPU waiting on a register read is never blocked behind guest-memory traffic).
 * @module
 */
import { RESPONSE_MAX_SIZE } from '../device/limits.js';
import { DESCRIPTOR_SIZE } from '../virtio/constants.js';
import { descriptorFootprint, ringFootprint } from '../virtio/queue-footprint.js';
import type { VirtioInterruptKind, VirtioNsmDevice } from '../virtio/virtio-nsm-device.js';
import { MSIX_VECTORS, VirtioPciFunction } from '../virtio/virtio-pci.js';
import { DmaMap } from './dma-map.js';
import { GuestMirror } from './guest-mirror.js';
import {
  COMMAND_NAMES,
  E2BIG,
  EINVAL,
  ENOSYS,
  FLAG_ERROR,
  FLAG_NO_REPLY,
  FLAG_REPLY,
  FLAG_TYPE_MASK,
  HEADER_SIZE,
  Payload,
  VERSION_MAJOR,
  VERSION_MINOR,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_VERSION,
  encodeMessage,
  readHeader,
} from './protocol.js';
import { PCI_CONFIG_SIZE } from '../virtio/pci-config.js';

/** The connection to one client: messages out, and the client's file descriptors as handles. */
export interface VfioUserLink {
  /** Sends one whole message. */
  send(message: Uint8Array): void;
  /** Signals the eventfd behind `handle` (adds 1). */
  signal(handle: number): void;
  /** Closes these received descriptors. */
  close(handles: readonly number[]): void;
  /** Ends the connection (a protocol violation); `reason` is for the person running the server. */
  drop(reason: string): void;
}

export interface VfioUserSessionOptions {
  /** Where routine events ('info') and client or guest faults ('warn') are reported. */
  readonly log?: (level: 'info' | 'warn', message: string) => void;
  /** max_data_xfer_size advertised (default 64 KiB): the largest region access or DMA transfer. */
  readonly maxTransfer?: number;
  /** max_dma_maps advertised (default 1024). */
  readonly maxDmaMappings?: number;
  /** How long a DMA_READ / DMA_WRITE may wait for its reply (default 10 s). */
  readonly dmaTimeoutMs?: number;
  /** Told of every message in and out (one line each), for debugging a client. */
  readonly trace?: (line: string) => void;
}

/** One line describing a message, for {@link VfioUserSessionOptions.trace}. */
function describeMessage(direction: '<-' | '->', m: Uint8Array, fds = 0): string {
  if (m.length < HEADER_SIZE) return `${direction} short message of ${m.length} bytes`;
  const h = readHeader(m);
  const p = m.subarray(HEADER_SIZE);
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const type = (h.flags & FLAG_TYPE_MASK) === FLAG_REPLY ? 'reply' : 'cmd';
  let detail = '';
  if (type === 'cmd' && (h.command === VFIO_USER_REGION_READ || h.command === VFIO_USER_REGION_WRITE) && p.length >= 16) {
    detail = ` region ${v.getUint32(8, true)} +0x${v.getBigUint64(0, true).toString(16)} count ${v.getUint32(12, true)}`;
    if (h.command === VFIO_USER_REGION_WRITE) detail += ` data ${[...p.subarray(16, 24)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  } else if (type === 'cmd' && (h.command === VFIO_USER_DMA_READ || h.command === VFIO_USER_DMA_WRITE) && p.length >= 16) {
    detail = ` addr 0x${v.getBigUint64(0, true).toString(16)} count ${v.getBigUint64(8, true)}`;
  } else if (type === 'cmd' && h.command === VFIO_USER_DEVICE_SET_IRQS && p.length >= 20) {
    detail = ` flags 0x${v.getUint32(4, true).toString(16)} index ${v.getUint32(8, true)} start ${v.getUint32(12, true)} count ${v.getUint32(16, true)}`;
  } else if (type === 'cmd' && h.command === VFIO_USER_DMA_MAP && p.length >= 32) {
    detail = ` flags ${v.getUint32(4, true)} addr 0x${v.getBigUint64(16, true).toString(16)} size 0x${v.getBigUint64(24, true).toString(16)}`;
  } else if (type === 'reply' && p.length > 0 && p.length <= 32) {
    detail = ` ${[...p].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  }
  const err = h.flags & FLAG_ERROR ? ` ERROR ${h.error}` : '';
  const nr = h.flags & FLAG_NO_REPLY ? ' no-reply' : '';
  return `${direction} ${type} ${COMMAND_NAMES[h.command] ?? h.command} id ${h.id} size ${h.size}${nr}${err}${fds ? ` fds ${fds}` : ''}${detail}`;
}

/** max_msg_fds advertised: the client sends at most this many descriptors per message. */
export const MAX_MSG_FDS = 8;
/** Largest VERSION message accepted (its JSON is parsed). */
const VERSION_MAX = 64 * 1024;

class Refusal {
  constructor(
    readonly errno: number,
    readonly why: string,
  ) {}
}

interface Pending {
  readonly command: number;
  readonly length: number;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (e: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class VfioUserSession {
  readonly pci: VirtioPciFunction;
  readonly maxTransfer: number;
  private readonly log: (level: 'info' | 'warn', message: string) => void;
  private readonly dmaTimeoutMs: number;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly dma: DmaMap;
  readonly mirror: GuestMirror;

  private link: VfioUserLink | null = null;
  private negotiated = false;
  /** MSI-X vector -> eventfd handle. */
  private vectors: (number | null)[] = new Array<number | null>(MSIX_VECTORS).fill(null);
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private memoryGeneration = -1;
  private kickPending = false;
  private serving: Promise<void> | null = null;
  private signals: Promise<void> = Promise.resolve();
  private warnedNoVector = false;

  constructor(
    readonly device: VirtioNsmDevice,
    options: VfioUserSessionOptions = {},
  ) {
    this.log = options.log ?? (() => undefined);
    this.maxTransfer = options.maxTransfer ?? 64 * 1024;
    if (this.maxTransfer < RESPONSE_MAX_SIZE) throw new RangeError(`maxTransfer must be at least ${RESPONSE_MAX_SIZE}`);
    this.dmaTimeoutMs = options.dmaTimeoutMs ?? 10_000;
    this.trace = options.trace;
    this.dma = new DmaMap(options.maxDmaMappings ?? 1024);
    this.mirror = new GuestMirror(this.dma, { read: (a, n) => this.dmaRead(a, n), write: (a, d) => this.dmaWrite(a, d) }, this.maxTransfer);
    this.pci = new VirtioPciFunction(device, {
      memory: () => {
        this.memoryGeneration = this.dma.generation;
        return this.dma.regions();
      },
      onWrite: this.mirror.onWrite,
      notify: (index) => this.kick(index),
      interrupt: (vector, kind) => this.interrupt(vector, kind),
      log: (m) => this.log('warn', m),
    });
  }

  /** Number of DMA mappings in force. */
  get dmaMappings(): number {
    return this.dma.size;
  }

  /** Resolves when no queue work is in progress (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.serving !== null) await this.serving;
    await this.signals;
  }

  // ---- connection lifecycle -------------------------------------------------------------------------

  /** A client connected; it must start with VERSION. */
  attach(link: VfioUserLink): void {
    if (this.link !== null) this.detach();
    const trace = this.trace;
    this.link = trace
      ? {
          ...link,
          send: (m) => {
            trace(describeMessage('->', m));
            link.send(m);
          },
          signal: (h) => {
            trace(`-> signal eventfd handle ${h}`);
            link.signal(h);
          },
        }
      : link;
    this.negotiated = false;
  }

  /**
   * The client went away: its DMA mappings and interrupt descriptors are dropped (the link closes
   * the descriptors), DMA still waiting for it fails, and the device keeps its state, as the
   * specification asks, until a client resets it.
   */
  detach(): void {
    const link = this.link;
    if (link === null) return;
    this.link = null;
    const handles = this.vectors.filter((h): h is number => h !== null);
    this.vectors = this.vectors.map(() => null);
    if (handles.length > 0) link.close(handles);
    this.dma.clear();
    this.mirror.discard();
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('the client disconnected'));
      this.pending.delete(id);
    }
  }

  // ---- incoming messages ------------------------------------------------------------------------------

  /** One whole message from the client, with the descriptors that came with it. */
  receive(message: Uint8Array, fds: readonly number[] = []): void {
    const link = this.link;
    if (link === null) return;
    this.trace?.(describeMessage('<-', message, fds.length));
    if (message.length < HEADER_SIZE) return this.violation(`a message of ${message.length} bytes is shorter than the 16-byte header`, fds);
    const h = readHeader(message);
    if (h.size !== message.length) return this.violation(`message size field ${h.size} differs from the ${message.length} bytes received`, fds);
    const payload = message.subarray(HEADER_SIZE);
    const type = h.flags & FLAG_TYPE_MASK;
    if (type === FLAG_REPLY) {
      if (fds.length > 0) link.close(fds);
      return this.reply(h.id, h.command, h.flags, h.error, payload);
    }
    if (type !== 0) return this.violation(`message type ${type} is neither command nor reply`, fds);
    const name = COMMAND_NAMES[h.command] ?? `command ${h.command}`;
    if (!this.negotiated && h.command !== VFIO_USER_VERSION) {
      return this.violation(`${name} before VERSION: the first message must negotiate the version`, fds);
    }
    let result: Uint8Array | Refusal;
    try {
      result = this.dispatch(h.command, payload, fds);
    } catch (e) {
      if (e instanceof ProtocolViolation) return this.violation(e.message, []);
      throw e;
    }
    if (this.link !== link) return; // dropped while handling
    if (result instanceof Refusal) {
      this.log('warn', `${name} refused (errno ${result.errno}): ${result.why}`);
      if (!(h.flags & FLAG_NO_REPLY)) link.send(encodeMessage(h.id, h.command, FLAG_REPLY | FLAG_ERROR, undefined, result.errno));
    } else if (!(h.flags & FLAG_NO_REPLY)) {
      link.send(encodeMessage(h.id, h.command, FLAG_REPLY, result));
    }
  }

  private violation(reason: string, fds: readonly number[]): void {
    const link = this.link;
    if (link === null) return;
    if (fds.length > 0) link.close(fds);
    this.log('warn', `closing the connection: ${reason}`);
    this.detach();
    link.drop(reason);
  }

  private dispatch(command: number, p: Uint8Array, fds: readonly number[]): Uint8Array | Refusal {
    const expectFds = command === VFIO_USER_DMA_MAP || command === VFIO_USER_DEVICE_SET_IRQS;
    if (!expectFds && fds.length > 0) {
      this.link!.close(fds);
      return new Refusal(EINVAL, `${fds.length} unexpected file descriptor(s)`);
    }
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    switch (command) {
      case VFIO_USER_VERSION:
        return this.version(p, v);
      case VFIO_USER_DMA_MAP:
        return this.dmaMap(p, v, fds);
      case VFIO_USER_DMA_UNMAP:
        return this.dmaUnmap(p, v);
      case VFIO_USER_DEVICE_GET_INFO:
        if (p.length < 4) return new Refusal(EINVAL, 'payload shorter than argsz');
        return new Payload(16).u32(0, 16).u32(4, VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI).u32(8, VFIO_PCI_NUM_REGIONS).u32(12, VFIO_PCI_NUM_IRQS).bytes;
      case VFIO_USER_DEVICE_GET_REGION_INFO:
        return this.regionInfo(p, v);
      case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return this.irqInfo(p, v);
      case VFIO_USER_DEVICE_SET_IRQS:
        return this.setIrqs(p, v, fds);
      case VFIO_USER_REGION_READ:
        return this.regionRead(p, v);
      case VFIO_USER_REGION_WRITE:
        return this.regionWrite(p, v);
      case VFIO_USER_DEVICE_RESET:
        this.log('info', 'device reset by the client');
        this.pci.reset();
        return new Uint8Array(0);
      default:
        return new Refusal(ENOSYS, 'not supported by this server');
    }
  }

  private version(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    if (this.negotiated) return new Refusal(EINVAL, 'the version was already negotiated');
    if (p.length < 4) throw new ProtocolViolation('VERSION payload shorter than 4 bytes');
    if (p.length > VERSION_MAX) throw new ProtocolViolation(`VERSION payload of ${p.length} bytes (at most ${VERSION_MAX})`);
    const major = v.getUint16(0, true);
    const minor = v.getUint16(2, true);
    if (major !== VERSION_MAJOR) throw new ProtocolViolation(`the client speaks vfio-user ${major}.${minor}; this server speaks ${VERSION_MAJOR}.${VERSION_MINOR}`);
    if (p.length > 4) {
      const end = p.indexOf(0, 4);
      const text = new TextDecoder('utf-8', { fatal: false }).decode(p.subarray(4, end < 0 ? p.length : end));
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ProtocolViolation('VERSION capabilities are not JSON');
      }
      if (typeof parsed !== 'object' || parsed === null) throw new ProtocolViolation('VERSION capabilities are not a JSON object');
    }
    const caps = JSON.stringify({
      capabilities: { max_msg_fds: MAX_MSG_FDS, max_data_xfer_size: this.maxTransfer, max_dma_maps: this.dma.maxMappings, pgsizes: 4096 },
    });
    const json = new TextEncoder().encode(caps);
    const out = new Uint8Array(4 + json.length + 1); // NUL-terminated
    const o = new DataView(out.buffer);
    o.setUint16(0, VERSION_MAJOR, true);
    o.setUint16(2, Math.min(minor, VERSION_MINOR), true);
    out.set(json, 4);
    this.negotiated = true;
    this.log('info', `client negotiated vfio-user ${VERSION_MAJOR}.${Math.min(minor, VERSION_MINOR)}`);
    return out;
  }

  private dmaMap(p: Uint8Array, v: DataView, fds: readonly number[]): Uint8Array | Refusal {
    // Guest memory is reached through DMA_READ / DMA_WRITE even when shared by descriptor.
    if (fds.length > 0) this.link!.close(fds);
    if (fds.length > 1) return new Refusal(EINVAL, `${fds.length} descriptors for one mapping`);
    if (p.length < 32 || v.getUint32(0, true) < 32) return new Refusal(EINVAL, 'DMA_MAP payload shorter than 32 bytes');
    const flags = v.getUint32(4, true);
    const address = v.getBigUint64(16, true);
    const size = v.getBigUint64(24, true);
    const e = this.dma.map(address, size, flags);
    if (e !== 0) return new Refusal(e, `mapping [0x${address.toString(16)}, +0x${size.toString(16)}) flags ${flags}`);
    return new Uint8Array(0);
  }

  private dmaUnmap(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    if (p.length < 24 || v.getUint32(0, true) < 24) return new Refusal(EINVAL, 'DMA_UNMAP payload shorter than 24 bytes');
    const flags = v.getUint32(4, true);
    const address = v.getBigUint64(8, true);
    const size = v.getBigUint64(16, true);
    const e = this.dma.unmap(address, size, flags);
    if (e !== 0) return new Refusal(e, `unmapping [0x${address.toString(16)}, +0x${size.toString(16)}) flags ${flags}`);
    return p.slice(0, 24);
  }

  private regionSize(index: number): number {
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return PCI_CONFIG_SIZE;
    if (index >= 0 && index < 6) return this.pci.barSize(index);
    return 0; // expansion ROM, VGA
  }

  private regionInfo(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    if (p.length < 32 || v.getUint32(0, true) < 32) return new Refusal(EINVAL, 'region info argsz below 32');
    const index = v.getUint32(8, true);
    if (index >= VFIO_PCI_NUM_REGIONS) return new Refusal(EINVAL, `no region ${index}`);
    const size = this.regionSize(index);
    const flags = size > 0 ? VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE : 0;
    return new Payload(32).u32(0, 32).u32(4, flags).u32(8, index).u32(12, 0).u64(16, size).u64(24, 0).bytes;
  }

  private irqInfo(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    if (p.length < 16 || v.getUint32(0, true) < 16) return new Refusal(EINVAL, 'irq info argsz below 16');
    const index = v.getUint32(8, true);
    if (index >= VFIO_PCI_NUM_IRQS) return new Refusal(EINVAL, `no interrupt index ${index}`);
    const msix = index === VFIO_PCI_MSIX_IRQ_INDEX;
    return new Payload(16).u32(0, 16).u32(4, msix ? VFIO_IRQ_INFO_EVENTFD : 0).u32(8, index).u32(12, msix ? MSIX_VECTORS : 0).bytes;
  }

  private setIrqs(p: Uint8Array, v: DataView, fds: readonly number[]): Uint8Array | Refusal {
    const refuse = (why: string): Refusal => {
      if (fds.length > 0) this.link!.close(fds);
      return new Refusal(EINVAL, why);
    };
    if (p.length < 20 || v.getUint32(0, true) < 20) return refuse('SET_IRQS payload shorter than 20 bytes');
    const flags = v.getUint32(4, true);
    const index = v.getUint32(8, true);
    const start = v.getUint32(12, true);
    const count = v.getUint32(16, true);
    const data = flags & (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD);
    const action = flags & (VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER);
    if ((data & (data - 1)) !== 0 || data === 0 || (action & (action - 1)) !== 0 || action === 0 || (flags & ~0x3f) !== 0) {
      return refuse(`flags 0x${flags.toString(16)} must name one data type and one action`);
    }
    if (index >= VFIO_PCI_NUM_IRQS) return refuse(`no interrupt index ${index}`);
    const vectors = index === VFIO_PCI_MSIX_IRQ_INDEX ? MSIX_VECTORS : 0;
    // DATA_NONE with count 0 disables every interrupt of the index.
    if (data === VFIO_IRQ_SET_DATA_NONE && action === VFIO_IRQ_SET_ACTION_TRIGGER && count === 0) {
      if (fds.length > 0) return refuse('descriptors with DATA_NONE');
      if (vectors > 0) this.release(0, vectors);
      return new Uint8Array(0);
    }
    if (start + count > vectors || count === 0) return refuse(`vectors [${start}, ${start + count}) of index ${index}, which has ${vectors}`);
    if (action !== VFIO_IRQ_SET_ACTION_TRIGGER) return refuse('MSI-X vectors are not maskable through SET_IRQS');
    if (data === VFIO_IRQ_SET_DATA_EVENTFD) {
      if (fds.length === 0) {
        this.release(start, count);
      } else if (fds.length === count) {
        this.release(start, count);
        fds.forEach((h, i) => (this.vectors[start + i] = h));
      } else {
        return refuse(`${fds.length} descriptors for ${count} vectors`);
      }
      return new Uint8Array(0);
    }
    if (fds.length > 0) return refuse('descriptors without DATA_EVENTFD');
    if (data === VFIO_IRQ_SET_DATA_BOOL && p.length < 20 + count) return refuse('DATA_BOOL without its array');
    for (let i = 0; i < count; i++) {
      if (data === VFIO_IRQ_SET_DATA_BOOL && p[20 + i] === 0) continue;
      this.signal(start + i);
    }
    return new Uint8Array(0);
  }

  private release(start: number, count: number): void {
    const handles: number[] = [];
    for (let i = start; i < start + count; i++) {
      const h = this.vectors[i];
      if (h !== null && h !== undefined) handles.push(h);
      this.vectors[i] = null;
    }
    if (handles.length > 0) this.link?.close(handles);
  }

  private regionAccess(p: Uint8Array, v: DataView): { offset: number; region: number; count: number } | Refusal {
    if (p.length < 16) return new Refusal(EINVAL, 'region access payload shorter than 16 bytes');
    const offset = v.getBigUint64(0, true);
    const region = v.getUint32(8, true);
    const count = v.getUint32(12, true);
    if (count > this.maxTransfer) return new Refusal(E2BIG, `count ${count} above max_data_xfer_size ${this.maxTransfer}`);
    const size = this.regionSize(region);
    if (size === 0) return new Refusal(EINVAL, `region ${region} does not exist`);
    if (count === 0 || offset + BigInt(count) > BigInt(size)) return new Refusal(EINVAL, `[0x${offset.toString(16)}, +${count}) is outside region ${region} of ${size} bytes`);
    return { offset: Number(offset), region, count };
  }

  private regionRead(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    const a = this.regionAccess(p, v);
    if (a instanceof Refusal) return a;
    const data = a.region === VFIO_PCI_CONFIG_REGION_INDEX ? this.pci.configRead(a.offset, a.count) : this.pci.barRead(a.region, a.offset, a.count);
    const out = new Uint8Array(16 + a.count);
    out.set(p.subarray(0, 16));
    out.set(data, 16);
    return out;
  }

  private regionWrite(p: Uint8Array, v: DataView): Uint8Array | Refusal {
    const a = this.regionAccess(p, v);
    if (a instanceof Refusal) return a;
    if (p.length < 16 + a.count) return new Refusal(EINVAL, `REGION_WRITE carries ${p.length - 16} bytes, count says ${a.count}`);
    const data = p.slice(16, 16 + a.count);
    if (a.region === VFIO_PCI_CONFIG_REGION_INDEX) this.pci.configWrite(a.offset, data);
    else this.pci.barWrite(a.region, a.offset, data);
    return p.slice(0, 16);
  }

  // ---- DMA: requests from the server -----------------------------------------------------------------

  private dmaRequest(command: number, payload: Uint8Array, length: number): Promise<Uint8Array> {
    const link = this.link;
    if (link === null) return Promise.reject(new Error('no client connected'));
    let id = this.nextId;
    while (this.pending.has(id)) id = (id + 1) & 0xffff;
    this.nextId = (id + 1) & 0xffff;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${COMMAND_NAMES[command]} got no reply within ${this.dmaTimeoutMs} ms`));
      }, this.dmaTimeoutMs);
      this.pending.set(id, { command, length, resolve, reject, timer });
      link.send(encodeMessage(id, command, 0, payload));
    });
  }

  private reply(id: number, command: number, flags: number, error: number, payload: Uint8Array): void {
    const p = this.pending.get(id);
    if (p === undefined || p.command !== command) {
      this.log('warn', `ignoring a reply (id ${id}, ${COMMAND_NAMES[command] ?? command}) to nothing this server asked`);
      return;
    }
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (flags & FLAG_ERROR) return p.reject(new Error(`${COMMAND_NAMES[command]} failed in the client (errno ${error})`));
    if (command === VFIO_USER_DMA_READ) {
      const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      if (payload.length !== 16 + p.length || v.getBigUint64(8, true) !== BigInt(p.length)) {
        return p.reject(new Error(`DMA_READ reply carries ${payload.length - 16} bytes, ${p.length} were asked for`));
      }
      return p.resolve(payload.slice(16));
    }
    p.resolve(payload);
  }

  private dmaRead(addr: number, length: number): Promise<Uint8Array> {
    return this.dmaRequest(VFIO_USER_DMA_READ, new Payload(16).u64(0, addr).u64(8, length).bytes, length);
  }

  private async dmaWrite(addr: number, data: Uint8Array): Promise<void> {
    const payload = new Uint8Array(16 + data.length);
    const v = new DataView(payload.buffer);
    v.setBigUint64(0, BigInt(addr), true);
    v.setBigUint64(8, BigInt(data.length), true);
    payload.set(data, 16);
    await this.dmaRequest(VFIO_USER_DMA_WRITE, payload, data.length);
  }

  // ---- the queue ----------------------------------------------------------------------------------------

  private kick(index: number): void {
    if (index !== 0) return;
    this.kickPending = true;
    if (this.serving === null) {
      this.serving = this.serve().finally(() => (this.serving = null));
    }
  }

  /**
   * Serves kicks until none is pending: fetch the queue's footprint, let the device run on the
   * copy, write back, interrupt. With EVENT_IDX, re-reads avail.idx after writing avail_event, so
   * a request the driver published meanwhile without kicking is not left behind.
   */
  private async serve(): Promise<void> {
    while (this.kickPending && this.link !== null) {
      this.kickPending = false;
      const q = this.pci.activeQueue;
      if (q === null) continue;
      try {
        if (this.memoryGeneration !== this.dma.generation) {
          await this.device.drain();
          this.memoryGeneration = this.dma.generation;
          this.device.replaceMemory(this.dma.regions());
        }
        const { layout } = q;
        await this.mirror.fetch(ringFootprint(layout));
        const table = this.mirror.read(layout.descTable, DESCRIPTOR_SIZE * layout.size);
        if (table !== undefined) {
          const first = descriptorFootprint(table, q.indirect);
          await this.mirror.fetch([...first.buffers, ...first.tables]);
          const nested = first.tables.flatMap((t) => {
            const bytes = this.mirror.read(t.addr, t.len);
            return bytes === undefined ? [] : descriptorFootprint(bytes, false).buffers;
          });
          if (nested.length > 0) await this.mirror.fetch(nested);
        }
        const availIdx = this.mirror.read(layout.availRing + 2, 2);
        await this.device.queueNotify(0);
        await this.mirror.writeBack();
        await this.signals;
        if (q.eventIdx && availIdx !== undefined && this.pci.activeQueue !== null) {
          const fresh = await this.dmaRead(layout.availRing + 2, 2);
          if (fresh[0] !== availIdx[0] || fresh[1] !== availIdx[1]) this.kickPending = true;
        }
      } catch (e) {
        this.log('warn', `queue service stopped: ${(e as Error).message}`);
      }
    }
  }

  /** The device interrupted: write back what it wrote, then signal the vector. */
  private interrupt(vector: number | null, kind: VirtioInterruptKind): void {
    const written = this.mirror.writeBack();
    this.signals = Promise.all([this.signals, written])
      .then(() => {
        if (vector === null) {
          if (!this.warnedNoVector) this.log('warn', `a ${kind} interrupt has no MSI-X vector (the driver set none): not delivered`);
          this.warnedNoVector = true;
          return;
        }
        this.signal(vector);
      })
      .catch((e: unknown) => this.log('warn', `a ${kind} interrupt was not delivered: ${(e as Error).message}`));
  }

  private signal(vector: number): void {
    const h = this.vectors[vector];
    if (h === null || h === undefined || this.link === null) {
      if (!this.warnedNoVector) this.log('warn', `MSI-X vector ${vector} has no eventfd from the client: interrupt not delivered`);
      this.warnedNoVector = true;
      return;
    }
    this.link.signal(h);
  }
}

/** A message that cannot be answered: the connection is closed. */
class ProtocolViolation extends Error {}

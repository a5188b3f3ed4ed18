/**
 * A vfio-user client for tests, written from the specification (QEMU docs/interop/vfio-user.rst)
 * without using src/vfio-user: it frames messages, matches replies to requests, serves the
 * server's DMA_READ / DMA_WRITE from a {@link TestMemory}, and drives a virtio-pci function the
 * way Linux's virtio_pci_modern does (through REGION_READ / REGION_WRITE on BAR 4). It speaks
 * over any byte transport: directly to a session object, or over a Unix socket.
 */
import { TestMemory } from './virtqueue-driver.js';

export const CMD = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  GET_INFO: 4,
  GET_REGION_INFO: 5,
  GET_IRQ_INFO: 7,
  SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  RESET: 13,
} as const;

export interface Reply {
  readonly id: number;
  readonly command: number;
  readonly flags: number;
  readonly error: number;
  readonly payload: Uint8Array;
}

export function le(bytes: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[at + i]!;
  return v;
}

export function put(bytes: Uint8Array, at: number, n: number, value: number | bigint): void {
  let v = BigInt(value);
  for (let i = 0; i < n; i++) {
    bytes[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

export function message(id: number, command: number, flags: number, payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(16 + payload.length);
  put(m, 0, 2, id);
  put(m, 2, 2, command);
  put(m, 4, 4, m.length);
  put(m, 8, 4, flags);
  m.set(payload, 16);
  return m;
}

export class TestVfioClient {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  /** Server -> client commands seen (DMA_READ, DMA_WRITE), in order. */
  readonly dmaLog: Array<{ command: number; addr: number; len: number }> = [];
  /** Set to make the client answer DMA requests with an error. */
  dmaError = 0;

  constructor(
    readonly memory: TestMemory,
    private readonly transmit: (bytes: Uint8Array) => void,
  ) {}

  /** Feed one whole message from the server. */
  deliver(m: Uint8Array): void {
    const flags = le(m, 8, 4);
    const r: Reply = { id: le(m, 0, 2), command: le(m, 2, 2), flags, error: le(m, 12, 4), payload: m.slice(16) };
    if ((flags & 0xf) === 1) {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      w?.(r);
      return;
    }
    // A command from the server: DMA against guest memory.
    const addr = le(r.payload, 0, 8);
    const len = le(r.payload, 8, 8);
    this.dmaLog.push({ command: r.command, addr, len });
    if (this.dmaError) {
      const e = message(r.id, r.command, 1 | 0x20, new Uint8Array(0));
      put(e, 12, 4, this.dmaError);
      return this.transmit(e);
    }
    if (r.command === CMD.DMA_READ) {
      const out = new Uint8Array(16 + len);
      out.set(r.payload.subarray(0, 16));
      out.set(this.memory.read(addr, len), 16);
      this.transmit(message(r.id, r.command, 1, out));
    } else if (r.command === CMD.DMA_WRITE) {
      this.memory.write(addr, r.payload.subarray(16, 16 + len));
      const out = new Uint8Array(12);
      out.set(r.payload.subarray(0, 12));
      this.transmit(message(r.id, r.command, 1, out));
    }
  }

  /** Sends a command; resolves with its reply (or undefined at once for a no-reply command). */
  request(command: number, payload: Uint8Array, noReply = false): Promise<Reply> {
    const id = this.nextId++ & 0xffff;
    const p = new Promise<Reply>((resolve) => this.waiting.set(id, resolve));
    this.transmit(message(id, command, noReply ? 0x10 : 0, payload));
    if (noReply) {
      this.waiting.delete(id);
      return Promise.resolve({ id, command, flags: 1, error: 0, payload: new Uint8Array(0) });
    }
    return p;
  }

  async version(caps = '{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}'): Promise<Reply> {
    const json = new TextEncoder().encode(caps);
    const p = new Uint8Array(4 + json.length + 1);
    p.set(json, 4);
    return this.request(CMD.VERSION, p);
  }

  async regionRead(region: number, offset: number, count: number): Promise<Uint8Array> {
    const p = new Uint8Array(16);
    put(p, 0, 8, offset);
    put(p, 8, 4, region);
    put(p, 12, 4, count);
    const r = await this.request(CMD.REGION_READ, p);
    if (r.flags & 0x20) throw new Error(`REGION_READ failed: errno ${r.error}`);
    return r.payload.slice(16);
  }

  async regionWrite(region: number, offset: number, data: Uint8Array, posted = false): Promise<Reply> {
    const p = new Uint8Array(16 + data.length);
    put(p, 0, 8, offset);
    put(p, 8, 4, region);
    put(p, 12, 4, data.length);
    p.set(data, 16);
    return this.request(CMD.REGION_WRITE, p, posted);
  }

  async configRead(offset: number, n: number): Promise<number> {
    return le(await this.regionRead(7, offset, n), 0, n);
  }

  /** Little-endian register access on BAR 4 (the virtio structures). */
  async bar4Read(offset: number, n: number): Promise<number> {
    return le(await this.regionRead(4, offset, n), 0, n);
  }

  async bar4Write(offset: number, n: number, value: number, posted = false): Promise<void> {
    const d = new Uint8Array(n);
    put(d, 0, n, value);
    const r = await this.regionWrite(4, offset, d, posted);
    if (r.flags & 0x20) throw new Error(`REGION_WRITE failed: errno ${r.error}`);
  }

  async dmaMap(addr: number, size: number, flags = 3): Promise<Reply> {
    const p = new Uint8Array(32);
    put(p, 0, 4, 32);
    put(p, 4, 4, flags);
    put(p, 16, 8, addr);
    put(p, 24, 8, size);
    return this.request(CMD.DMA_MAP, p);
  }

  async dmaUnmap(addr: number, size: number, flags = 0): Promise<Reply> {
    const p = new Uint8Array(24);
    put(p, 0, 4, 24);
    put(p, 4, 4, flags);
    put(p, 8, 8, addr);
    put(p, 16, 8, size);
    return this.request(CMD.DMA_UNMAP, p);
  }

  async setIrqs(flags: number, index: number, start: number, count: number, data: Uint8Array = new Uint8Array(0)): Promise<Reply> {
    const p = new Uint8Array(20 + data.length);
    put(p, 0, 4, p.length);
    put(p, 4, 4, flags);
    put(p, 8, 4, index);
    put(p, 12, 4, start);
    put(p, 16, 4, count);
    p.set(data, 20);
    return this.request(CMD.SET_IRQS, p);
  }
}

/** Offsets in the virtio common configuration (virtio 1.x, 4.1.4.3). */
export const COMMON = {
  deviceFeatureSelect: 0x00,
  deviceFeature: 0x04,
  driverFeatureSelect: 0x08,
  driverFeature: 0x0c,
  msixConfig: 0x10,
  numQueues: 0x12,
  deviceStatus: 0x14,
  queueSelect: 0x16,
  queueSize: 0x18,
  queueMsixVector: 0x1a,
  queueEnable: 0x1c,
  queueNotifyOff: 0x1e,
  queueDesc: 0x20,
  queueDriver: 0x28,
  queueDevice: 0x30,
} as const;

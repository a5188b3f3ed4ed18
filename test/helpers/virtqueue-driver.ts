/**
 * The guest side of virtio-nsm for tests: guest physical memory (one array or several regions)
 * and a split-virtqueue driver that behaves like Linux's `drivers/misc/nsm.c` on top of
 * `drivers/virtio/virtio_ring.c`.
 *
 * What it reproduces, because a device must cope with exactly this:
 * - ring layout as virtio-mmio allocates it: descriptor table, available ring (with used_event)
 *   right after it, used ring (with avail_event) at the next 4096-byte boundary;
 * - the kernel's `struct nsm_msg` in guest memory: `u32 len; u8 data[0x1000]` for the request
 *   then `u32 len; u8 data[0x3000]` for the response, so the buffers sit at +4 and +0x1008;
 * - per request, `virtqueue_add_outbuf` (one device-readable descriptor, the request length)
 *   then `virtqueue_add_inbuf` (one device-writable descriptor of 0x3000), each published in the
 *   available ring at once; heads come from the free list, descriptors without NEXT keep the
 *   stale free-list index in `next`; freed chains go back on the front of the free list;
 * - one kick, suppressed as `virtqueue_kick_prepare_split` would (avail_event with EVENT_IDX,
 *   VIRTQ_USED_F_NO_NOTIFY otherwise);
 * - completion only through a 'vring' interrupt, then two `virtqueue_get_buf` calls that must
 *   return the request token then the response token (else -ENODATA), each writing used_event;
 *   the response length is min(used len, 0x3000);
 * - the ioctl's -EMSGSIZE for requests over 0x1000 bytes and the hwrng's GetRandom request and
 *   response parser (including its short-length quirk).
 * This file shares no code with src/virtio: its memory accessors are written independently.
 */
import type { VirtioInterruptKind, VirtioNsmDevice } from '../../src/virtio/index.js';

export const NSM_REQUEST_MAX_SIZE = 0x1000;
export const NSM_RESPONSE_MAX_SIZE = 0x3000;
export const EMSGSIZE = -90;
export const ENODATA = -61;
export const ETIMEDOUT = -110;
export const EFAULT = -14;

export const F_NEXT = 1;
export const F_WRITE = 2;
export const F_INDIRECT = 4;
export const FEATURE_INDIRECT = 1n << 28n;
export const FEATURE_EVENT_IDX = 1n << 29n;
export const FEATURE_VERSION_1 = 1n << 32n;

// ---- guest physical memory ----------------------------------------------------------------------

export interface TestRegion {
  readonly base: number;
  readonly bytes: Uint8Array;
}

/** Guest memory for tests: regions at guest addresses, accessed byte by byte. */
export class TestMemory {
  readonly regions: readonly TestRegion[];

  constructor(regions: readonly TestRegion[]) {
    this.regions = regions;
  }

  /** One array of `size` bytes at guest address 0. */
  static flat(size: number): TestMemory {
    return new TestMemory([{ base: 0, bytes: new Uint8Array(size) }]);
  }

  /** What VirtioNsmDevice.activate takes: the single array, or the region list. */
  forDevice(asArray = this.regions.length === 1 && this.regions[0]!.base === 0): Uint8Array | { guestAddress: bigint; bytes: Uint8Array }[] {
    if (asArray) return this.regions[0]!.bytes;
    return this.regions.map((r) => ({ guestAddress: BigInt(r.base), bytes: r.bytes }));
  }

  private locate(addr: number): [Uint8Array, number] {
    for (const r of this.regions) if (addr >= r.base && addr < r.base + r.bytes.length) return [r.bytes, addr - r.base];
    throw new RangeError(`test memory: guest address 0x${addr.toString(16)} is not backed`);
  }

  getByte(addr: number): number {
    const [b, o] = this.locate(addr);
    return b[o]!;
  }

  setByte(addr: number, v: number): void {
    const [b, o] = this.locate(addr);
    b[o] = v & 0xff;
  }

  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.getByte(addr + i);
    return out;
  }

  write(addr: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.setByte(addr + i, data[i]!);
  }

  fill(addr: number, len: number, v: number): void {
    for (let i = 0; i < len; i++) this.setByte(addr + i, v);
  }

  le(addr: number, n: number): number {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.getByte(addr + i);
    return v;
  }

  setLe(addr: number, n: number, value: number | bigint): void {
    let v = BigInt(value);
    for (let i = 0; i < n; i++) {
      this.setByte(addr + i, Number(v & 0xffn));
      v >>= 8n;
    }
  }

  /** A copy of every region, to compare memory before and after. */
  copy(): Uint8Array[] {
    return this.regions.map((r) => r.bytes.slice());
  }

  /** Guest ranges whose bytes differ from an earlier {@link copy}, as [start, end) pairs. */
  changedSince(before: Uint8Array[]): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    this.regions.forEach((r, k) => {
      const old = before[k]!;
      let i = 0;
      while (i < r.bytes.length) {
        if (r.bytes[i] === old[i]) {
          i++;
          continue;
        }
        const start = i;
        while (i < r.bytes.length && r.bytes[i] !== old[i]) i++;
        out.push([r.base + start, r.base + i]);
      }
    });
    return out;
  }
}

// ---- the split ring, as virtio_ring.c drives it ------------------------------------------------

export interface Descriptor {
  readonly addr: number | bigint;
  readonly len: number;
  readonly flags: number;
  readonly next: number;
}

export interface DriverLayout {
  /** Guest address of the descriptor table (the start of the vring). */
  readonly ringBase: number;
  /** Guest address of `struct nsm_msg`. */
  readonly msgBase: number;
  /** Used-ring alignment: 4096 as virtio-mmio (default), 64 (SMP_CACHE_BYTES) as modern virtio-pci. */
  readonly ringAlign?: number;
}

export interface TransactionResult {
  /** 0 or a negative errno, as the ioctl would return. */
  readonly rc: number;
  /** The response bytes (min(used len, 0x3000)) when rc is 0. */
  readonly response?: Uint8Array;
  /** The used-ring entries consumed, in order. */
  readonly used: Array<{ id: number; len: number }>;
  /** Interrupts seen during the transaction. */
  readonly interrupts: VirtioInterruptKind[];
}

const align = (x: number, a: number) => Math.ceil(x / a) * a;

export class LinuxNsmDriver {
  readonly num: number;
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  readonly reqData: number;
  readonly respData: number;
  readonly ringAlign: number;
  features = 0n;
  /** Every interrupt the device raised, in order. */
  readonly interrupts: VirtioInterruptKind[] = [];

  // driver-private state of the split ring (vring_virtqueue)
  private readonly extraNext: number[];
  private readonly extraFlags: number[];
  private readonly tokens: Array<number | undefined>;
  private freeHead = 0;
  private numFree: number;
  private availShadow = 0;
  private numAdded = 0;
  private lastUsed = 0;
  private cmdDone = false;

  constructor(
    readonly device: VirtioNsmDevice,
    readonly memory: TestMemory,
    layout: DriverLayout,
    num = device.queueMaxSizes[0]!,
  ) {
    this.num = num;
    this.desc = layout.ringBase;
    this.avail = this.desc + 16 * num;
    this.ringAlign = layout.ringAlign ?? 4096;
    this.used = align(this.avail + 6 + 2 * num, this.ringAlign);
    this.reqData = layout.msgBase + 4;
    this.respData = layout.msgBase + 4 + NSM_REQUEST_MAX_SIZE + 4;
    this.extraNext = Array.from({ length: num }, (_, i) => i + 1);
    this.extraFlags = new Array<number>(num).fill(0);
    this.tokens = new Array<number | undefined>(num).fill(undefined);
    this.numFree = num;
  }

  /** Bytes the vring occupies (to zero it, as the kernel's allocation is zeroed). */
  get ringEnd(): number {
    return this.used + 6 + 8 * this.num;
  }

  /**
   * Probe: negotiate features (those Linux's ring code knows, of those offered, minus any the
   * test removes), zero the ring, and activate the device as the transport would on DRIVER_OK.
   */
  probe(options: { without?: bigint; asArray?: boolean } = {}): void {
    const linuxKnows = FEATURE_VERSION_1 | FEATURE_INDIRECT | FEATURE_EVENT_IDX;
    this.features = this.device.deviceFeatures & linuxKnows & ~(options.without ?? 0n);
    if (!this.device.ackFeatures(this.features)) throw new Error('device refused the features it offered');
    this.memory.fill(this.desc, this.ringEnd - this.desc, 0);
    this.device.activate({
      memory: this.memory.forDevice(options.asArray),
      queues: [{ size: this.num, descTable: BigInt(this.desc), availRing: BigInt(this.avail), usedRing: BigInt(this.used) }],
      interrupt: (kind) => this.onInterrupt(kind),
    });
  }

  /**
   * Hands the same guest (ring, memory, driver state) to another device, as after a live
   * migration: a restored device is activated with memory and interrupt only.
   */
  reattach(device: VirtioNsmDevice): void {
    (this as { device: VirtioNsmDevice }).device = device;
    device.activate({ memory: this.memory.forDevice(), interrupt: (kind) => this.onInterrupt(kind) });
  }

  /** A copy of this driver over `memory` (a copy of this one's), driving `device`. */
  fork(memory: TestMemory, device: VirtioNsmDevice): LinuxNsmDriver {
    const d = new LinuxNsmDriver(device, memory, { ringBase: this.desc, msgBase: this.reqData - 4, ringAlign: this.ringAlign }, this.num);
    d.features = this.features;
    d.extraNext.splice(0, this.num, ...this.extraNext);
    d.extraFlags.splice(0, this.num, ...this.extraFlags);
    d.tokens.splice(0, this.num, ...this.tokens);
    d.freeHead = this.freeHead;
    d.numFree = this.numFree;
    d.availShadow = this.availShadow;
    d.numAdded = this.numAdded;
    d.lastUsed = this.lastUsed;
    return d;
  }

  private onInterrupt(kind: VirtioInterruptKind): void {
    this.interrupts.push(kind);
    if (kind === 'vring') this.cmdDone = true; // nsm_vq_callback -> complete(&cmd_done)
  }

  get eventIdx(): boolean {
    return (this.features & FEATURE_EVENT_IDX) !== 0n;
  }

  // ---- raw ring primitives (tests use them to build malformed chains) ----------------------------

  setDescriptor(table: number, i: number, d: Descriptor): void {
    const at = table + 16 * i;
    this.memory.setLe(at, 8, d.addr);
    this.memory.setLe(at + 8, 4, d.len);
    this.memory.setLe(at + 12, 2, d.flags);
    this.memory.setLe(at + 14, 2, d.next);
  }

  /** Puts `head` in the next available slot and publishes avail.idx (virtqueue_add_split does both). */
  makeAvailable(head: number): void {
    this.memory.setLe(this.avail + 4 + 2 * (this.availShadow & (this.num - 1)), 2, head);
    this.availShadow = (this.availShadow + 1) & 0xffff;
    this.memory.setLe(this.avail + 2, 2, this.availShadow);
    this.numAdded++;
  }

  /** Overwrites avail.idx (for the "moved too far" fault). */
  setAvailIdx(idx: number): void {
    this.memory.setLe(this.avail + 2, 2, idx);
  }

  setAvailFlags(flags: number): void {
    this.memory.setLe(this.avail, 2, flags);
  }

  usedIdx(): number {
    return this.memory.le(this.used + 2, 2);
  }

  usedEntry(slot: number): { id: number; len: number } {
    const at = this.used + 4 + 8 * (slot & (this.num - 1));
    return { id: this.memory.le(at, 4), len: this.memory.le(at + 4, 4) };
  }

  availEvent(): number {
    return this.memory.le(this.used + 4 + 8 * this.num, 2);
  }

  /** Kicks unconditionally and waits for the device to finish. */
  notify(): Promise<void> {
    return this.device.queueNotify(0);
  }

  // ---- virtio_ring.c ---------------------------------------------------------------------------------

  /** virtqueue_add_split with one scatterlist entry. Returns the head, or -1 when the ring is full. */
  addBuf(addr: number, len: number, write: boolean, token: number): number {
    if (this.numFree < 1) return -1; // -ENOSPC
    const head = this.freeHead;
    const flags = write ? F_WRITE : 0; // NEXT set then cleared on the last (only) descriptor
    this.setDescriptor(this.desc, head, { addr, len, flags, next: this.extraNext[head]! });
    this.extraFlags[head] = flags;
    this.freeHead = this.extraNext[head]!;
    this.numFree--;
    this.tokens[head] = token;
    this.makeAvailable(head);
    return head;
  }

  /** virtqueue_kick_prepare_split: does the device want this kick? */
  kickPrepare(): boolean {
    const newIdx = this.availShadow;
    const oldIdx = (newIdx - this.numAdded) & 0xffff;
    this.numAdded = 0;
    if (this.eventIdx) {
      const event = this.availEvent();
      return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
    }
    return (this.memory.le(this.used, 2) & 1) === 0; // VRING_USED_F_NO_NOTIFY
  }

  /** virtqueue_get_buf_ctx_split: the next used token and length, or null. */
  getBuf(): { token: number; id: number; len: number } | null {
    if (this.lastUsed === this.usedIdx()) return null;
    const { id, len } = this.usedEntry(this.lastUsed);
    if (id >= this.num || this.tokens[id] === undefined) throw new Error(`virtio_ring: id ${id} is not a head`);
    const token = this.tokens[id]!;
    // detach_buf_split: walk the chain by the driver's own flags, put it on the free list front
    let i = id;
    let count = 1;
    while (this.extraFlags[i]! & F_NEXT) {
      i = this.extraNext[i]!;
      count++;
    }
    this.extraNext[i] = this.freeHead;
    this.freeHead = id;
    this.numFree += count;
    this.tokens[id] = undefined;
    this.lastUsed = (this.lastUsed + 1) & 0xffff;
    // The avail flags shadow never has NO_INTERRUPT (the nsm queue has a callback): used_event.
    this.memory.setLe(this.avail + 4 + 2 * this.num, 2, this.lastUsed);
    return { token, id, len };
  }

  // ---- nsm.c -------------------------------------------------------------------------------------------

  /** nsm_sendrecv_msg_locked on the request already in msg.req. */
  private async sendrecv(): Promise<TransactionResult> {
    const seen = this.interrupts.length;
    const reqLen = this.memory.le(this.reqData - 4, 4);
    const used: Array<{ id: number; len: number }> = [];
    const finish = (rc: number, response?: Uint8Array): TransactionResult => ({
      rc,
      ...(response ? { response } : {}),
      used,
      interrupts: this.interrupts.slice(seen),
    });
    this.cmdDone = false; // init_completion
    if (this.addBuf(this.reqData, reqLen, false, this.reqData) < 0) return finish(-28);
    if (this.addBuf(this.respData, NSM_RESPONSE_MAX_SIZE, true, this.respData) < 0) {
      this.drain();
      return finish(-28);
    }
    if (this.kickPrepare()) await this.device.queueNotify(0);
    // wait_for_completion_io_timeout: the device has finished all it will do by now.
    if (!this.cmdDone) {
      this.drain();
      return finish(ETIMEDOUT);
    }
    const first = this.getBuf();
    if (first) used.push({ id: first.id, len: first.len });
    if (!first || first.token !== this.reqData) {
      this.drain();
      return finish(ENODATA); // "wrong request buffer."
    }
    const second = this.getBuf();
    if (second) used.push({ id: second.id, len: second.len });
    if (!second || second.token !== this.respData) {
      this.drain();
      return finish(ENODATA); // "wrong response buffer."
    }
    const len = Math.min(second.len, NSM_RESPONSE_MAX_SIZE);
    this.memory.setLe(this.respData - 4, 4, len);
    return finish(0, this.memory.read(this.respData, len));
  }

  private drain(): void {
    while (this.getBuf() !== null);
  }

  /** The NSM_IOCTL_RAW path: copy the request in, send, copy the (possibly truncated) response out. */
  async ioctlRaw(request: Uint8Array, userResponseLen = NSM_RESPONSE_MAX_SIZE): Promise<TransactionResult> {
    if (request.length > NSM_REQUEST_MAX_SIZE) return { rc: EMSGSIZE, used: [], interrupts: [] };
    this.memory.write(this.reqData, request);
    this.memory.setLe(this.reqData - 4, 4, request.length);
    const r = await this.sendrecv();
    if (r.rc !== 0 || !r.response) return r;
    return { ...r, response: r.response.subarray(0, Math.min(userResponseLen, r.response.length)) };
  }

  /** nsm_rng_read: the kernel's hwrng GetRandom; returns the bytes or a negative errno. */
  async hwrngRead(max: number): Promise<Uint8Array | number> {
    const getRandom = new Uint8Array([0x69, ...new TextEncoder().encode('GetRandom')]);
    this.memory.write(this.reqData, getRandom);
    this.memory.setLe(this.reqData - 4, 4, getRandom.length);
    const r = await this.sendrecv();
    if (r.rc !== 0) return r.rc;
    return parseGetRandom(r.response!, max);
  }
}

/** parse_resp_get_random from nsm.c, quirks included (lengths 0-22 read an unset length). */
export function parseGetRandom(resp: Uint8Array, max: number): Uint8Array | number {
  const prefix = [0xa1, 0x69, ...new TextEncoder().encode('GetRandom'), 0xa1, 0x66, ...new TextEncoder().encode('random')];
  if (resp.length < prefix.length + 1 || prefix.some((b, i) => resp[i] !== b)) return EFAULT;
  const obj = resp.subarray(prefix.length);
  if ((obj[0]! & 0xe0) !== 0x40) return EFAULT; // cbor_object_is_array: major type 2
  const short = obj[0]! & 0x1f;
  let offset = 1;
  if (short >= 24) offset += 1 << (short - 24);
  if (obj.length < offset) return EFAULT;
  let len: number;
  if (short === 23) len = 23;
  else if (short === 24) len = obj[1]!;
  else if (short === 25) len = (obj[1]! << 8) | obj[2]!;
  else if (short === 26) len = obj[1]! * 0x1000000 + ((obj[2]! << 16) | (obj[3]! << 8) | obj[4]!);
  else if (short === 27) return EFAULT; // never produced; lengths past 2^31 fail anyway
  else return EFAULT; // 0-22: the kernel reads an uninitialised length: treat as failure
  if (obj.length - offset < len) return EFAULT;
  return obj.slice(offset, offset + Math.min(len, max));
}

/**
 * A PCI function's 256-byte configuration space (type 0 header): identity registers, BARs with
 * their sizing behaviour, the capability list, and a mask of the bits software may write. Bits
 * outside the mask keep their value whatever is written, as on hardware; a BAR reads back its
 * size mask after all ones are written to it.
 *
 * Little-endian throughout. Only what a virtio function needs: no expansion ROM, no extended
 * (PCI Express) space.
 * @module
 */

export const PCI_CONFIG_SIZE = 256;

// Header offsets.
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

/** Status bit: the capability list at 0x34 is valid. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Command bits software may set: I/O, memory, bus master, parity, SERR, INTx disable. */
export const PCI_COMMAND_WRITABLE = 0x0547;

export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_MSIX = 0x11;

/** A memory BAR (this model has no I/O BARs). A 64-bit BAR also occupies the next index. */
export interface PciBar {
  readonly index: number;
  /** Bytes: a power of two, at least 16. */
  readonly size: number;
  readonly is64: boolean;
  readonly prefetchable: boolean;
}

export interface PciIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** Base class, subclass and programming interface as one 24-bit number. */
  readonly classCode: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** 0 for none, 1-4 for INTA-INTD. */
  readonly interruptPin: number;
}

export class PciConfigSpace {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly view = new DataView(this.bytes.buffer);
  private readonly writable = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly initial: Uint8Array;
  /** Offset of the last capability's "next" byte (0x34 while the list is empty). */
  private lastNext = PCI_CAPABILITY_LIST;
  /** First free byte for the next capability. */
  private free = 0x40;

  constructor(
    identity: PciIdentity,
    readonly bars: readonly PciBar[],
    capabilities: readonly { id: number; body: Uint8Array; writable?: Uint8Array }[],
  ) {
    const v = this.view;
    v.setUint16(PCI_VENDOR_ID, identity.vendorId, true);
    v.setUint16(PCI_DEVICE_ID, identity.deviceId, true);
    v.setUint16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
    v.setUint8(PCI_REVISION_ID, identity.revision);
    v.setUint8(PCI_CLASS_PROG, identity.classCode & 0xff);
    v.setUint16(PCI_CLASS_PROG + 1, identity.classCode >>> 8, true);
    v.setUint16(PCI_SUBSYSTEM_VENDOR_ID, identity.subsystemVendorId, true);
    v.setUint16(PCI_SUBSYSTEM_ID, identity.subsystemId, true);
    v.setUint8(PCI_INTERRUPT_PIN, identity.interruptPin);
    this.setMask(PCI_COMMAND, 2, PCI_COMMAND_WRITABLE);
    this.setMask(PCI_CACHE_LINE_SIZE, 1, 0xff);
    this.setMask(PCI_LATENCY_TIMER, 1, 0xff);
    this.setMask(PCI_INTERRUPT_LINE, 1, 0xff);
    for (const bar of bars) {
      if (bar.size < 16 || (bar.size & (bar.size - 1)) !== 0 || bar.size > 0x8000_0000) throw new RangeError(`BAR ${bar.index}: bad size ${bar.size}`);
      const at = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      // Memory space, type 00 (32-bit) or 10 (64-bit), prefetchable bit 3.
      v.setUint32(at, (bar.is64 ? 0x4 : 0) | (bar.prefetchable ? 0x8 : 0), true);
      this.setMask(at, 4, ~(bar.size - 1) & 0xffff_fff0);
      if (bar.is64) this.setMask(at + 4, 4, 0xffff_ffff);
    }
    for (const cap of capabilities) this.addCapability(cap.id, cap.body, cap.writable);
    this.initial = this.bytes.slice();
  }

  private setMask(offset: number, length: number, mask: number): void {
    for (let i = 0; i < length; i++) this.writable[offset + i] = (mask >>> (8 * i)) & 0xff;
  }

  /** Appends a capability (body without the id and next bytes); returns its offset. */
  private addCapability(id: number, body: Uint8Array, writable?: Uint8Array): number {
    const at = this.free;
    const size = (2 + body.length + 3) & ~3;
    if (at + size > PCI_CONFIG_SIZE) throw new RangeError('capabilities do not fit in configuration space');
    this.bytes[at] = id;
    this.bytes[at + 1] = 0;
    this.bytes.set(body, at + 2);
    if (writable) this.writable.set(writable, at + 2);
    this.bytes[this.lastNext] = at;
    this.lastNext = at + 1;
    this.free = at + size;
    return at;
  }

  /** Offsets of the capabilities with this id, in list order. */
  findCapabilities(id: number): number[] {
    const out: number[] = [];
    for (let at = this.bytes[PCI_CAPABILITY_LIST]!, n = 0; at !== 0 && n < 48; at = this.bytes[at + 1]!, n++) {
      if (this.bytes[at] === id) out.push(at);
    }
    return out;
  }

  /** Reads `length` bytes at `offset` (the range was checked by the caller). */
  read(offset: number, length: number): Uint8Array {
    return this.bytes.slice(offset, offset + length);
  }

  u8(offset: number): number {
    return this.bytes[offset]!;
  }

  u16(offset: number): number {
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    return this.view.getUint32(offset, true);
  }

  /** Applies a write through the writable-bit mask. */
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const m = this.writable[at]!;
      this.bytes[at] = (this.bytes[at]! & ~m) | (data[i]! & m);
    }
  }

  /** Back to power-on values (a function-level reset). */
  reset(): void {
    this.bytes.set(this.initial);
  }
}

/**
 * The virtio 1.x "modern" PCI transport around a {@link VirtioNsmDevice}: the registers an
 * unchanged guest driver (Linux virtio_pci_modern) programs, laid out as QEMU lays out its own
 * `virtio-nsm-pci`. Vendor 0x1af4, device 0x1040 + 33 = 0x1061, revision 1, class 0xff0000
 * (other), subsystem 0x1af4:0x1100.
 *
 * BAR 4 (16 KiB, 64-bit prefetchable memory) holds four 4 KiB areas named by vendor
 * capabilities: common configuration at 0x0000, ISR status at 0x1000, device configuration at
 * 0x2000 (the NSM has none: zeros) and queue notification at 0x3000 (multiplier 4, the queue
 * writes its index at offset 0). BAR 1 (4 KiB) holds the MSI-X table (2 vectors, at 0) and
 * pending-bit array (at 0x800). There is also the VIRTIO_PCI_CAP_PCI_CFG window. No INTx pin: the
 * driver uses MSI-X, as Linux does on every PCI platform that has it.
 *
 * Runtime-agnostic: the caller (a vfio-user server, or a VMM) routes configuration and BAR
 * accesses here and supplies guest memory, kick handling and interrupt delivery as hooks.
 * @module
 */
import type { GuestMemoryInput, GuestWriteObserver } from './guest-memory.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_FEATURES_OK, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC } from './constants.js';
import { PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR, PciConfigSpace, type PciBar } from './pci-config.js';
import type { QueueLayout } from './split-queue.js';
import type { VirtioInterruptKind, VirtioNsmDevice } from './virtio-nsm-device.js';

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Modern virtio PCI device ids are 0x1040 + the virtio device id. */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** Written by a driver to say "no MSI-X vector"; read back when a vector was refused. */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** The BAR with the virtio structures, and where each one is. */
export const VIRTIO_BAR = 4;
export const VIRTIO_BAR_SIZE = 0x4000;
export const COMMON_CFG_OFFSET = 0x0000;
export const ISR_OFFSET = 0x1000;
export const DEVICE_CFG_OFFSET = 0x2000;
export const NOTIFY_OFFSET = 0x3000;
export const AREA_SIZE = 0x1000;
export const NOTIFY_OFF_MULTIPLIER = 4;
/** The BAR with the MSI-X table and PBA. */
export const MSIX_BAR = 1;
export const MSIX_BAR_SIZE = 0x1000;
export const MSIX_TABLE_OFFSET = 0;
export const MSIX_PBA_OFFSET = 0x800;
/** One vector for configuration changes, one for the queue. */
export const MSIX_VECTORS = 2;

// virtio_pci_cap cfg_type values.
const CAP_COMMON = 1;
const CAP_NOTIFY = 2;
const CAP_ISR = 3;
const CAP_DEVICE = 4;
const CAP_PCI_CFG = 5;

// Common configuration layout (struct virtio_pci_modern_common_cfg).
const COMMON_SIZE = 0x40;
type Field = readonly [offset: number, size: number, name: string];
const FIELDS: readonly Field[] = [
  [0x00, 4, 'device_feature_select'],
  [0x04, 4, 'device_feature'],
  [0x08, 4, 'driver_feature_select'],
  [0x0c, 4, 'driver_feature'],
  [0x10, 2, 'config_msix_vector'],
  [0x12, 2, 'num_queues'],
  [0x14, 1, 'device_status'],
  [0x15, 1, 'config_generation'],
  [0x16, 2, 'queue_select'],
  [0x18, 2, 'queue_size'],
  [0x1a, 2, 'queue_msix_vector'],
  [0x1c, 2, 'queue_enable'],
  [0x1e, 2, 'queue_notify_off'],
  [0x20, 4, 'queue_desc_lo'],
  [0x24, 4, 'queue_desc_hi'],
  [0x28, 4, 'queue_driver_lo'],
  [0x2c, 4, 'queue_driver_hi'],
  [0x30, 4, 'queue_device_lo'],
  [0x34, 4, 'queue_device_hi'],
  [0x38, 2, 'queue_notify_data'],
  [0x3a, 2, 'queue_reset'],
  [0x3c, 2, 'admin_queue_index'],
  [0x3e, 2, 'admin_queue_num'],
];

export interface VirtioPciHooks {
  /** Guest memory for the device, asked for when the driver enables the queue. */
  memory(): GuestMemoryInput;
  /** Dirty tracking, passed to the device at activation. */
  readonly onWrite?: GuestWriteObserver;
  /** The driver wrote queue `index` to the notification area (a kick). */
  notify(index: number): void;
  /** Deliver an interrupt on MSI-X `vector`, or nowhere (null) when the driver set none. */
  interrupt(vector: number | null, kind: VirtioInterruptKind): void;
  /** Something the person running the device should know (a refused activation). */
  log(message: string): void;
}

interface QueueRegs {
  size: number;
  msixVector: number;
  enable: number;
  desc: bigint;
  driver: bigint;
  device: bigint;
}

function vendorCap(cfgType: number, bar: number, offset: number, length: number, extra = 0): Uint8Array {
  // cap_len, cfg_type, bar, id, padding[2], offset u32, length u32 (+ extra bytes)
  const b = new Uint8Array(14 + extra);
  const v = new DataView(b.buffer);
  b[0] = 16 + extra;
  b[1] = cfgType;
  b[2] = bar;
  v.setUint32(6, offset, true);
  v.setUint32(10, length, true);
  return b;
}

export class VirtioPciFunction {
  readonly config: PciConfigSpace;
  /** BARs in index order (what region info reports). */
  readonly bars: readonly PciBar[] = [
    { index: MSIX_BAR, size: MSIX_BAR_SIZE, is64: false, prefetchable: false },
    { index: VIRTIO_BAR, size: VIRTIO_BAR_SIZE, is64: true, prefetchable: true },
  ];
  private readonly msixCap: number;
  private readonly pciCfgCap: number;

  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = 0n;
  private msixConfig = VIRTIO_MSI_NO_VECTOR;
  private queueSelect = 0;
  private isr = 0;
  /** The status register as the driver wrote it (the device adds only DEVICE_NEEDS_RESET). */
  private driverStatus = 0;
  private queue: QueueRegs;
  private active = false;

  constructor(
    readonly device: VirtioNsmDevice,
    private readonly hooks: VirtioPciHooks,
  ) {
    const msix = new Uint8Array(10);
    const mv = new DataView(msix.buffer);
    mv.setUint16(0, MSIX_VECTORS - 1, true); // message control: table size - 1
    mv.setUint32(2, MSIX_TABLE_OFFSET | MSIX_BAR, true);
    mv.setUint32(6, MSIX_PBA_OFFSET | MSIX_BAR, true);
    const msixWritable = new Uint8Array(10);
    msixWritable[1] = 0xc0; // enable, function mask
    const notify = vendorCap(CAP_NOTIFY, VIRTIO_BAR, NOTIFY_OFFSET, AREA_SIZE, 4);
    new DataView(notify.buffer).setUint32(14, NOTIFY_OFF_MULTIPLIER, true);
    const pciCfg = vendorCap(CAP_PCI_CFG, 0, 0, 0, 4);
    const pciCfgWritable = new Uint8Array(18);
    pciCfgWritable[2] = 0xff; // bar
    pciCfgWritable.fill(0xff, 6, 18); // offset, length, pci_cfg_data
    this.config = new PciConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceType,
        revision: 1,
        classCode: 0xff0000,
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: 0x1100,
        interruptPin: 0,
      },
      this.bars,
      [
        { id: PCI_CAP_ID_MSIX, body: msix, writable: msixWritable },
        { id: PCI_CAP_ID_VNDR, body: vendorCap(CAP_COMMON, VIRTIO_BAR, COMMON_CFG_OFFSET, AREA_SIZE) },
        { id: PCI_CAP_ID_VNDR, body: vendorCap(CAP_ISR, VIRTIO_BAR, ISR_OFFSET, AREA_SIZE) },
        { id: PCI_CAP_ID_VNDR, body: vendorCap(CAP_DEVICE, VIRTIO_BAR, DEVICE_CFG_OFFSET, AREA_SIZE) },
        { id: PCI_CAP_ID_VNDR, body: notify },
        { id: PCI_CAP_ID_VNDR, body: pciCfg, writable: pciCfgWritable },
      ],
    );
    this.msixCap = this.config.findCapabilities(PCI_CAP_ID_MSIX)[0]!;
    const vendor = this.config.findCapabilities(PCI_CAP_ID_VNDR);
    this.pciCfgCap = vendor[vendor.length - 1]!;
    this.queue = this.freshQueue();
  }

  private freshQueue(): QueueRegs {
    return { size: this.device.queueMaxSizes[0]!, msixVector: VIRTIO_MSI_NO_VECTOR, enable: 0, desc: 0n, driver: 0n, device: 0n };
  }

  /** Size of a BAR (0 for an index with no BAR, including the upper half of BAR 4). */
  barSize(index: number): number {
    return this.bars.find((b) => b.index === index)?.size ?? 0;
  }

  /** Whether the guest turned MSI-X on in the capability's message control. */
  get msixEnabled(): boolean {
    return (this.config.u16(this.msixCap + 2) & 0x8000) !== 0;
  }

  /** The queue as the driver programmed it, while the device is active; else null. */
  get activeQueue(): { layout: QueueLayout; indirect: boolean; eventIdx: boolean } | null {
    if (!this.active) return null;
    const q = this.queue;
    const n = (v: bigint) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Infinity);
    const f = this.device.driverFeatures;
    return {
      layout: { size: q.size, descTable: n(q.desc), availRing: n(q.driver), usedRing: n(q.device) },
      indirect: (f & VIRTIO_RING_F_INDIRECT_DESC) !== 0n,
      eventIdx: (f & VIRTIO_RING_F_EVENT_IDX) !== 0n,
    };
  }

  // ---- configuration space ---------------------------------------------------------------------

  /** A read of configuration space (`offset + length` within 256 bytes, checked by the caller). */
  configRead(offset: number, length: number): Uint8Array {
    const data = this.config.read(offset, length);
    const dataAt = this.pciCfgCap + 16;
    if (offset < dataAt + 4 && offset + length > dataAt) {
      // VIRTIO_PCI_CAP_PCI_CFG: pci_cfg_data reads the BAR window the driver selected.
      const window = this.pciCfgWindow();
      if (window !== null) {
        const bytes = new Uint8Array(4);
        bytes.set(this.barRead(window.bar, window.offset, window.length));
        for (let i = 0; i < length; i++) {
          const at = offset + i - dataAt;
          if (at >= 0 && at < 4) data[i] = bytes[at]!;
        }
      }
    }
    return data;
  }

  /** A write to configuration space. */
  configWrite(offset: number, data: Uint8Array): void {
    const dataAt = this.pciCfgCap + 16;
    if (offset < dataAt + 4 && offset + data.length > dataAt) {
      const window = this.pciCfgWindow();
      if (window !== null && offset === dataAt && data.length >= window.length) {
        this.barWrite(window.bar, window.offset, data.subarray(0, window.length));
      }
      return;
    }
    this.config.write(offset, data);
  }

  private pciCfgWindow(): { bar: number; offset: number; length: number } | null {
    const at = this.pciCfgCap;
    const bar = this.config.u8(at + 4);
    const offset = this.config.u32(at + 8);
    const length = this.config.u32(at + 12);
    if (length !== 1 && length !== 2 && length !== 4) return null;
    if (offset % length !== 0 || offset + length > this.barSize(bar)) return null;
    return { bar, offset, length };
  }

  // ---- BARs -------------------------------------------------------------------------------------------

  /** A read of `length` bytes at `offset` in BAR `index` (inside the BAR, checked by the caller). */
  barRead(index: number, offset: number, length: number): Uint8Array {
    if (index !== VIRTIO_BAR) return new Uint8Array(length); // MSI-X table and PBA: the client emulates them
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const area = at - (at % AREA_SIZE);
      const n = Math.min(length - done, area + AREA_SIZE - at);
      out.set(this.areaRead(area, at - area, n), done);
      done += n;
    }
    return out;
  }

  private areaRead(area: number, offset: number, length: number): Uint8Array {
    switch (area) {
      case COMMON_CFG_OFFSET: {
        const image = this.commonImage();
        const out = new Uint8Array(length);
        if (offset < COMMON_SIZE) out.set(image.subarray(offset, Math.min(COMMON_SIZE, offset + length)));
        return out;
      }
      case ISR_OFFSET: {
        const out = new Uint8Array(length);
        if (offset === 0) {
          out[0] = this.isr;
          this.isr = 0; // reading clears it
        }
        return out;
      }
      case DEVICE_CFG_OFFSET:
        return this.device.readConfig(offset, length);
      default:
        return new Uint8Array(length);
    }
  }

  /** A write to BAR `index`. */
  barWrite(index: number, offset: number, data: Uint8Array): void {
    if (index !== VIRTIO_BAR) return;
    const area = offset - (offset % AREA_SIZE);
    const at = offset - area;
    if (at + data.length > AREA_SIZE) return; // straddles two structures: no driver does that
    if (area === COMMON_CFG_OFFSET) {
      if (at < COMMON_SIZE) this.commonWrite(at, data.subarray(0, Math.min(data.length, COMMON_SIZE - at)));
    } else if (area === DEVICE_CFG_OFFSET) {
      this.device.writeConfig(at, data);
    } else if (area === NOTIFY_OFFSET) {
      if (at === 0 && data.length >= 2) this.hooks.notify(data[0]! | (data[1]! << 8));
    }
  }

  // ---- common configuration ------------------------------------------------------------------------

  private commonImage(): Uint8Array {
    const b = new Uint8Array(COMMON_SIZE);
    const v = new DataView(b.buffer);
    const sel = this.queueSelect === 0;
    const q = this.queue;
    const half = (bits: bigint, select: number) => (select < 2 ? Number((bits >> BigInt(32 * select)) & 0xffff_ffffn) : 0);
    v.setUint32(0x00, this.deviceFeatureSelect, true);
    v.setUint32(0x04, half(this.device.deviceFeatures, this.deviceFeatureSelect), true);
    v.setUint32(0x08, this.driverFeatureSelect, true);
    v.setUint32(0x0c, half(this.driverFeatures, this.driverFeatureSelect), true);
    v.setUint16(0x10, this.msixConfig, true);
    v.setUint16(0x12, 1, true);
    v.setUint8(0x14, this.driverStatus | (this.device.status & STATUS_DEVICE_NEEDS_RESET));
    v.setUint8(0x15, 0);
    v.setUint16(0x16, this.queueSelect, true);
    if (sel) {
      v.setUint16(0x18, q.size, true);
      v.setUint16(0x1a, q.msixVector, true);
      v.setUint16(0x1c, q.enable, true);
      v.setUint16(0x1e, 0, true);
      v.setBigUint64(0x20, q.desc, true);
      v.setBigUint64(0x28, q.driver, true);
      v.setBigUint64(0x30, q.device, true);
    } else {
      v.setUint16(0x1a, VIRTIO_MSI_NO_VECTOR, true);
    }
    return b;
  }

  private commonWrite(offset: number, data: Uint8Array): void {
    const image = this.commonImage();
    image.set(data, offset);
    const v = new DataView(image.buffer);
    for (const [at, size, name] of FIELDS) {
      if (at >= offset + data.length || at + size <= offset) continue;
      const value = size === 1 ? v.getUint8(at) : size === 2 ? v.getUint16(at, true) : v.getUint32(at, true);
      this.setField(name, value);
    }
  }

  private setField(name: string, value: number): void {
    const q = this.queue;
    const queueWritable = this.queueSelect === 0 && !this.active;
    const lo = (old: bigint) => (old & ~0xffff_ffffn) | BigInt(value >>> 0);
    const hi = (old: bigint) => (old & 0xffff_ffffn) | (BigInt(value >>> 0) << 32n);
    switch (name) {
      case 'device_feature_select':
        this.deviceFeatureSelect = value >>> 0;
        break;
      case 'driver_feature_select':
        this.driverFeatureSelect = value >>> 0;
        break;
      case 'driver_feature':
        if (this.driverFeatureSelect < 2) {
          const shift = BigInt(32 * this.driverFeatureSelect);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(value >>> 0) << shift);
        }
        break;
      case 'config_msix_vector':
        this.msixConfig = value < MSIX_VECTORS ? value : VIRTIO_MSI_NO_VECTOR;
        break;
      case 'device_status':
        this.setStatus(value);
        break;
      case 'queue_select':
        this.queueSelect = value;
        break;
      case 'queue_size':
        if (queueWritable) q.size = value;
        break;
      case 'queue_msix_vector':
        if (this.queueSelect === 0) q.msixVector = value < MSIX_VECTORS ? value : VIRTIO_MSI_NO_VECTOR;
        break;
      case 'queue_enable':
        if (queueWritable && value === 1) {
          q.enable = 1;
          if (this.driverStatus & STATUS_FEATURES_OK) this.start();
        }
        break;
      case 'queue_desc_lo':
        if (queueWritable) q.desc = lo(q.desc);
        break;
      case 'queue_desc_hi':
        if (queueWritable) q.desc = hi(q.desc);
        break;
      case 'queue_driver_lo':
        if (queueWritable) q.driver = lo(q.driver);
        break;
      case 'queue_driver_hi':
        if (queueWritable) q.driver = hi(q.driver);
        break;
      case 'queue_device_lo':
        if (queueWritable) q.device = lo(q.device);
        break;
      case 'queue_device_hi':
        if (queueWritable) q.device = hi(q.device);
        break;
      default:
        break; // read-only
    }
  }

  /**
   * A status write. The queue is served from the moment it is enabled after FEATURES_OK, not
   * only from DRIVER_OK: Linux's nsm driver registers its hwrng inside probe, and the hwrng core
   * reads from it at once, before the virtio core sets DRIVER_OK (QEMU serves that read too).
   */
  private setStatus(value: number): void {
    if (value === 0) return this.resetVirtio();
    let next = value & 0xff & ~STATUS_DEVICE_NEEDS_RESET;
    if (next & STATUS_FEATURES_OK && !(this.driverStatus & STATUS_FEATURES_OK) && !this.device.ackFeatures(this.driverFeatures)) {
      next &= ~STATUS_FEATURES_OK; // refused: the driver reads FEATURES_OK back as clear
    }
    this.driverStatus = next;
    this.device.writeStatus(next);
    if (next & STATUS_FEATURES_OK && this.queue.enable === 1) this.start();
  }

  private start(): void {
    if (this.active) return;
    const q = this.queue;
    try {
      this.device.activate({
        memory: this.hooks.memory(),
        queues: [{ size: q.size, descTable: q.desc, availRing: q.driver, usedRing: q.device }],
        interrupt: (kind) => this.raise(kind),
        ...(this.hooks.onWrite ? { onWrite: this.hooks.onWrite } : {}),
      });
      this.active = true;
      this.device.writeStatus(this.driverStatus); // activate() marks DRIVER_OK; the driver has not said it yet
    } catch (e) {
      this.hooks.log(`cannot start the queue: ${(e as Error).message}`);
    }
  }

  private raise(kind: VirtioInterruptKind): void {
    this.isr |= kind === 'vring' ? 1 : 2;
    const vector = kind === 'vring' ? this.queue.msixVector : this.msixConfig;
    this.hooks.interrupt(vector === VIRTIO_MSI_NO_VECTOR ? null : vector, kind);
  }

  /** Status 0: the device and every transport register back to their reset values. */
  private resetVirtio(): void {
    this.device.reset();
    this.active = false;
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatures = 0n;
    this.msixConfig = VIRTIO_MSI_NO_VECTOR;
    this.queueSelect = 0;
    this.isr = 0;
    this.driverStatus = 0;
    this.queue = this.freshQueue();
  }

  /** A function-level reset: the virtio reset plus configuration space back to power-on. */
  reset(): void {
    this.resetVirtio();
    this.config.reset();
  }
}

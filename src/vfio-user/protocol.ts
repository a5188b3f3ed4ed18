/**
 * The vfio-user wire format (QEMU's docs/interop/vfio-user.rst): a 16-byte header (message id
 * u16, command u16, total size u32, flags u32, error u32) followed by the command's payload, all
 * in host byte order (little-endian here). Also the numbers of the commands, flags and VFIO
 * structures this server uses.
 * @module
 */

export const HEADER_SIZE = 16;

export const VFIO_USER_VERSION = 1;
export const VFIO_USER_DMA_MAP = 2;
export const VFIO_USER_DMA_UNMAP = 3;
export const VFIO_USER_DEVICE_GET_INFO = 4;
export const VFIO_USER_DEVICE_GET_REGION_INFO = 5;
export const VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6;
export const VFIO_USER_DEVICE_GET_IRQ_INFO = 7;
export const VFIO_USER_DEVICE_SET_IRQS = 8;
export const VFIO_USER_REGION_READ = 9;
export const VFIO_USER_REGION_WRITE = 10;
export const VFIO_USER_DMA_READ = 11;
export const VFIO_USER_DMA_WRITE = 12;
export const VFIO_USER_DEVICE_RESET = 13;
export const VFIO_USER_REGION_WRITE_MULTI = 15;
export const VFIO_USER_DEVICE_FEATURE = 16;

export const COMMAND_NAMES: Readonly<Record<number, string>> = {
  1: 'VERSION',
  2: 'DMA_MAP',
  3: 'DMA_UNMAP',
  4: 'DEVICE_GET_INFO',
  5: 'DEVICE_GET_REGION_INFO',
  6: 'DEVICE_GET_REGION_IO_FDS',
  7: 'DEVICE_GET_IRQ_INFO',
  8: 'DEVICE_SET_IRQS',
  9: 'REGION_READ',
  10: 'REGION_WRITE',
  11: 'DMA_READ',
  12: 'DMA_WRITE',
  13: 'DEVICE_RESET',
  15: 'REGION_WRITE_MULTI',
  16: 'DEVICE_FEATURE',
};

/** Flags: type in bits 0-3 (0 command, 1 reply), no-reply bit 4, error bit 5. */
export const FLAG_TYPE_MASK = 0xf;
export const FLAG_COMMAND = 0;
export const FLAG_REPLY = 1;
export const FLAG_NO_REPLY = 0x10;
export const FLAG_ERROR = 0x20;

/** The protocol version spoken (QEMU's client proposes 0.0). */
export const VERSION_MAJOR = 0;
export const VERSION_MINOR = 0;

// struct vfio_device_info flags.
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
// PCI region indexes (VFIO_PCI_*_REGION_INDEX).
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;
export const VFIO_PCI_NUM_REGIONS = 9;
// struct vfio_region_info flags.
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
// PCI interrupt indexes.
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;
// struct vfio_irq_info flags.
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
// struct vfio_irq_set flags.
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
// DMA map/unmap flags.
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;

// errno values carried in error replies (Linux numbering).
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const E2BIG = 7;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ENOSYS = 38;
export const ENOTSUP = 95;

export interface MessageHeader {
  readonly id: number;
  readonly command: number;
  readonly size: number;
  readonly flags: number;
  readonly error: number;
}

export function readHeader(bytes: Uint8Array): MessageHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  return { id: v.getUint16(0, true), command: v.getUint16(2, true), size: v.getUint32(4, true), flags: v.getUint32(8, true), error: v.getUint32(12, true) };
}

/** A whole message: header (size filled in) and payload. */
export function encodeMessage(id: number, command: number, flags: number, payload: Uint8Array = new Uint8Array(0), error = 0): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, id, true);
  v.setUint16(2, command, true);
  v.setUint32(4, out.length, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, error, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** A little-endian builder for payload structures. */
export class Payload {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u32(at: number, v: number): this {
    this.view.setUint32(at, v >>> 0, true);
    return this;
  }
  u64(at: number, v: bigint | number): this {
    this.view.setBigUint64(at, BigInt(v), true);
    return this;
  }
}

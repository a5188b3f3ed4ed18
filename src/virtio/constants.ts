/**
 * Numbers fixed by the virtio 1.x specification and by the NSM's use of it: the device id,
 * feature bits, device-status bits and split-ring descriptor flags.
 * @module
 */

/** Virtio device id of the Nitro Secure Module (`VIRTIO_ID_NITRO_SEC_MOD`). */
export const VIRTIO_ID_NSM = 33;

/** Queue size QEMU gives its virtio-nsm queue: room for one request/response pair. */
export const DEFAULT_QUEUE_SIZE = 2;
/** Largest split-queue size the virtio specification allows. */
export const MAX_QUEUE_SIZE = 32768;

// ---- feature bits (bigint masks) --------------------------------------------------------------
/** The driver may put an indirect descriptor table in a descriptor. */
export const VIRTIO_RING_F_INDIRECT_DESC = 1n << 28n;
/** used_event / avail_event fields suppress notifications by index. */
export const VIRTIO_RING_F_EVENT_IDX = 1n << 29n;
/** Compliance with virtio 1.0 or later (little-endian rings, NEEDS_RESET). */
export const VIRTIO_F_VERSION_1 = 1n << 32n;

// ---- device status register -------------------------------------------------------------------
export const STATUS_ACKNOWLEDGE = 0x01;
export const STATUS_DRIVER = 0x02;
export const STATUS_DRIVER_OK = 0x04;
export const STATUS_FEATURES_OK = 0x08;
/** Set by the device after an error it cannot recover from without a reset. */
export const STATUS_DEVICE_NEEDS_RESET = 0x40;
export const STATUS_FAILED = 0x80;

// ---- split ring ----------------------------------------------------------------------------------
/** The descriptor continues in `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer is a table of descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Driver asks the device not to interrupt (ignored when EVENT_IDX was negotiated). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Bytes in one descriptor: addr u64, len u32, flags u16, next u16. */
export const DESCRIPTOR_SIZE = 16;

/** Byte size of the descriptor table, available ring and used ring of a queue of `size`. */
export function ringSizes(size: number): { descTable: number; availRing: number; usedRing: number } {
  return {
    descTable: DESCRIPTOR_SIZE * size,
    // flags, idx, ring[size], used_event
    availRing: 6 + 2 * size,
    // flags, idx, ring[size] of {id u32, len u32}, avail_event
    usedRing: 6 + 8 * size,
  };
}

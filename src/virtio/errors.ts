/**
 * Error classes of the virtio device model.
 *
 * A {@link VirtioTransportError} describes a guest driver's mistake on the queue; it is never
 * thrown into the VMM, only recorded (`VirtioNsmDevice.transportError`) while the device sits in
 * DEVICE_NEEDS_RESET. The two other classes are thrown to the VMM for its own mistakes: using the
 * device API out of order, or restoring bytes that are not a snapshot.
 * @module
 */

/** What the driver got wrong. */
export type TransportErrorKind =
  /** Queue size zero, not a power of two, or above the device's maximum. */
  | 'queue-config'
  /** The descriptor table, available ring or used ring is not inside guest memory. */
  | 'ring-address'
  /** avail.idx moved further than the queue size past what the device consumed. */
  | 'avail-index'
  /** A head or `next` index at or beyond the table size. */
  | 'descriptor-index'
  /** A buffer (or an indirect table) not wholly inside guest memory. */
  | 'buffer-address'
  /** A zero-length descriptor. */
  | 'zero-length-descriptor'
  /** A chain longer than its table: a loop. */
  | 'descriptor-loop'
  /** INDIRECT not negotiated, nested, chained with NEXT, not at the head, or a bad table size. */
  | 'indirect-descriptor'
  /** A device-readable descriptor after a device-writable one in the same chain. */
  | 'descriptor-order'
  /** The request chain holds no device-readable bytes. */
  | 'zero-length-request'
  /** The request chain also holds device-writable descriptors. */
  | 'request-direction'
  /** No second chain after the request chain. */
  | 'missing-response'
  /** The response chain holds device-readable descriptors. */
  | 'response-direction'
  /** The response chain does not offer exactly 0x3000 writable bytes. */
  | 'response-size';

/** A transport fault: recorded, never thrown. */
export class VirtioTransportError extends Error {
  override readonly name = 'VirtioTransportError';
  constructor(
    readonly kind: TransportErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The VMM used the device API out of order (for example a snapshot while a request is in flight). */
export class VirtioStateError extends Error {
  override readonly name = 'VirtioStateError';
}

/** The bytes given to `VirtioNsmDevice.restore` are not a snapshot this version can read. */
export class VirtioSnapshotError extends Error {
  override readonly name = 'VirtioSnapshotError';
}

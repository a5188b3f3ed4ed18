/**
 * The virtio-nsm device model's public surface (re-exported by the package root).
 * @module
 */
export {
  VirtioNsmDevice,
  VIRTIO_NSM_FEATURES,
  type VirtioActivation,
  type VirtioInterruptKind,
  type VirtioNsmDeviceOptions,
  type VirtioQueueConfig,
  type VirtioRestoreOptions,
  type VirtioSnapshotInfo,
} from './virtio-nsm-device.js';
export { VirtioTransportError, VirtioStateError, VirtioSnapshotError, type TransportErrorKind } from './errors.js';
export type { GuestMemoryInput, GuestMemoryRegion } from './guest-memory.js';
export * as virtioConstants from './constants.js';

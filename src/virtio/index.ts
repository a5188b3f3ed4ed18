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
export type { GuestMemoryInput, GuestMemoryRegion, GuestWriteObserver } from './guest-memory.js';
export * as virtioConstants from './constants.js';
export { VirtioPciFunction, type VirtioPciHooks, VIRTIO_BAR, MSIX_BAR, MSIX_VECTORS } from './virtio-pci.js';
export { ringFootprint, descriptorFootprint, mergeRanges, type GuestRange } from './queue-footprint.js';

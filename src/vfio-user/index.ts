/**
 * The vfio-user server's runtime-agnostic part (re-exported by the package root): the protocol
 * session for one virtio-nsm PCI function. The socket lives in nsm-emulator/node.
 * @module
 */
export { VfioUserSession, MAX_MSG_FDS, type VfioUserLink, type VfioUserSessionOptions } from './session.js';
export { DmaMap, type DmaMapping } from './dma-map.js';
export { GuestMirror, type DmaIo } from './guest-mirror.js';

/**
 * Sizes and counts fixed by the NSM interface (Linux uapi `nsm.h`, nsm-api, QEMU).
 * @module
 */

/** Number of PCRs the device has. */
export const MAX_PCRS = 32;
/** PCRs [0, BOOT_LOCKED_PCRS) are locked when the enclave boots. */
export const BOOT_LOCKED_PCRS = 16;
/** SHA-384 digest length: every PCR holds this many bytes. */
export const PCR_LENGTH = 48;
/** Largest request the device (and the Linux ioctl) accepts. */
export const REQUEST_MAX_SIZE = 0x1000;
/** Size of the response buffer the Linux driver always offers. */
export const RESPONSE_MAX_SIZE = 0x3000;
/** Bytes returned by one GetRandom. */
export const RANDOM_SIZE = 256;
/** Indices and ranges are u16 in nsm-api; larger numbers cannot be represented in a request. */
export const INDEX_MAX = 0xffff;
/** DescribeNSM version triple (QEMU, and a real enclave's output per nsm-cli). */
export const NSM_VERSION = { major: 1, minor: 0, patch: 0 } as const;

/**
 * What the Nitro hypervisor writes into the PCR bank when it starts an enclave, for a device
 * booted without an Enclave Image File: the built-in synthetic image and the parent instance.
 *
 * Three boot modes:
 * - `enclave` (the default): a production enclave. PCR0, PCR1 and PCR2 are the measurements of
 *   the built-in synthetic image (below), PCR4 measures the parent instance id, PCR3 and PCR8
 *   stay zero (no IAM role, unsigned image).
 * - `debug`: a debug-mode enclave. PCR0, PCR1, PCR2 (and PCR8) read as zero; PCR4 is kept.
 * - `bare`: every PCR zero, as QEMU's plain virtio-nsm device boots.
 *
 * The synthetic image is four sections, in the order an EIF stores them, each plain ASCII:
 * `kernel` = "nsm-emulator synthetic kernel " + hex(id), the `cmdline` nitro-cli's default
 * kernel command line, ramdisk 0 = "nsm-emulator synthetic init " + hex(id), ramdisk 1 =
 * "nsm-emulator synthetic application " + hex(id), where `id` is 16 bytes: drawn from the seed
 * (the "synthetic-image" stream) when the device is seeded, from the CSPRNG otherwise. The PCRs
 * are then measured the way nitro-cli measures an EIF: one extend of a zero register with
 * SHA-384(kernel || cmdline || ramdisk 0 || ramdisk 1) for PCR0, SHA-384(kernel || cmdline ||
 * ramdisk 0) for PCR1 and SHA-384(ramdisk 1) for PCR2.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { PCR_LENGTH } from './limits.js';
import { SeededRandom, systemRandom } from './random.js';
import { type DeviceSha384, nobleDeviceSha384 } from './sha384.js';

export type BootMode = 'enclave' | 'debug' | 'bare';

export const BOOT_MODES: readonly BootMode[] = ['enclave', 'debug', 'bare'];

/** Length of the synthetic image's id. */
export const SYNTHETIC_IMAGE_ID_LENGTH = 16;

/** nitro-cli's default kernel command line, the synthetic image's `cmdline` section. */
export const SYNTHETIC_IMAGE_CMDLINE =
  'reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on';

const ascii = (s: string) => new TextEncoder().encode(s);

/** `SHA-384(48 zero bytes || data)`: one extend of a zero PCR. */
export function extendZeroPcr(data: Uint8Array, hash: DeviceSha384 = nobleDeviceSha384): Uint8Array {
  return hash(new Uint8Array(PCR_LENGTH), data);
}

/** The sections of the synthetic image with this id, in EIF order. */
export function syntheticImageSections(id: Uint8Array): { kernel: Uint8Array; cmdline: Uint8Array; ramdisks: [Uint8Array, Uint8Array] } {
  const h = bytesToHex(id);
  return {
    kernel: ascii(`nsm-emulator synthetic kernel ${h}`),
    cmdline: ascii(SYNTHETIC_IMAGE_CMDLINE),
    ramdisks: [ascii(`nsm-emulator synthetic init ${h}`), ascii(`nsm-emulator synthetic application ${h}`)],
  };
}

/** PCR0, PCR1 and PCR2 of the synthetic image with this id (`hash`: which SHA-384 computes them). */
export function syntheticImagePcrs(id: Uint8Array, hash: DeviceSha384 = nobleDeviceSha384): { pcr0: Uint8Array; pcr1: Uint8Array; pcr2: Uint8Array } {
  const { kernel, cmdline, ramdisks } = syntheticImageSections(id);
  return {
    pcr0: extendZeroPcr(hash(kernel, cmdline, ramdisks[0], ramdisks[1]), hash),
    pcr1: extendZeroPcr(hash(kernel, cmdline, ramdisks[0]), hash),
    pcr2: extendZeroPcr(hash(ramdisks[1]), hash),
  };
}

/**
 * The synthetic image's id for a device made with this seed (null: unseeded): the first
 * {@link SYNTHETIC_IMAGE_ID_LENGTH} bytes of the seed's `synthetic-image` stream, or fresh random
 * bytes without a seed.
 */
export function syntheticImageId(seed: Uint8Array | null): Uint8Array {
  return seed === null ? systemRandom.bytes(SYNTHETIC_IMAGE_ID_LENGTH) : new SeededRandom(seed, 'synthetic-image').bytes(SYNTHETIC_IMAGE_ID_LENGTH);
}

/** PCR4 for a parent instance id (one extend with its UTF-8 bytes). */
export function parentInstancePcr(instanceId: string, hash: DeviceSha384 = nobleDeviceSha384): Uint8Array {
  return extendZeroPcr(new TextEncoder().encode(instanceId), hash);
}

/**
 * The PCR values a boot mode sets (indices missing are zero): the image's for `enclave`, the
 * parent instance's for `enclave` and `debug`, nothing for `bare`.
 */
export function bootModePcrs(mode: BootMode, imageId: () => Uint8Array, instanceId: string, hash: DeviceSha384 = nobleDeviceSha384): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  if (mode === 'bare') return out;
  if (mode === 'enclave') {
    const { pcr0, pcr1, pcr2 } = syntheticImagePcrs(imageId(), hash);
    out.set(0, pcr0).set(1, pcr1).set(2, pcr2);
  }
  out.set(4, parentInstancePcr(instanceId, hash));
  return out;
}

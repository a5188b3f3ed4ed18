/**
 * The device's hash: SHA-384 over the concatenation of some byte strings (a PCR extend, the
 * synthetic image's measurements). @noble/hashes by default, which runs anywhere; a runtime with
 * a native SHA-384 (node:crypto) can pass its own through the device's `sha384` option: the
 * bytes are the same, only the cost differs.
 * @module
 */
import { sha384 } from '@noble/hashes/sha2.js';

/** SHA-384 of `parts` concatenated. */
export type DeviceSha384 = (...parts: Uint8Array[]) => Uint8Array;

/** {@link DeviceSha384} with @noble/hashes (pure JS). */
export const nobleDeviceSha384: DeviceSha384 = (...parts) => {
  const h = sha384.create();
  for (const p of parts) h.update(p);
  return h.digest();
};

/**
 * The SHA-384 the measurements use, behind a small seam so a runtime with a faster native hash
 * (node:crypto) can supply its own. The default is @noble/hashes, which runs anywhere.
 * @module
 */
import { sha384 } from '@noble/hashes/sha2.js';

/** An incremental SHA-384. `clone` copies the running state (used to share common prefixes). */
export interface Sha384Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
  clone(): Sha384Hasher;
}

export type Sha384Factory = () => Sha384Hasher;

function wrap(h: ReturnType<typeof sha384.create>): Sha384Hasher {
  return {
    update: (d) => void h.update(d),
    digest: () => h.digest(),
    clone: () => wrap(h.clone()),
  };
}

/** SHA-384 from @noble/hashes. */
export const nobleSha384: Sha384Factory = () => wrap(sha384.create());

/** 48 zero bytes: every PCR before its first extend. */
export const ZERO_PCR = new Uint8Array(48);

/** `SHA-384(48 zero bytes || data)`: one extend of a zero PCR, as nitro-cli and the hypervisor do. */
export function extendFromZero(data: Uint8Array, factory: Sha384Factory = nobleSha384): Uint8Array {
  const h = factory();
  h.update(ZERO_PCR);
  h.update(data);
  return h.digest();
}

/** The plain SHA-384 of `data`. */
export function sha384Digest(data: Uint8Array, factory: Sha384Factory = nobleSha384): Uint8Array {
  const h = factory();
  h.update(data);
  return h.digest();
}

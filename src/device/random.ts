/**
 * Randomness for the device: the platform CSPRNG, or a seeded deterministic stream for tests.
 *
 * A seeded source is HMAC-SHA384 in counter mode keyed by SHA-384 of the seed, with a label per
 * consumer ("get-random", "module-id", "attestation", ...) so that one consumer drawing more
 * bytes never shifts what another one sees. Its position is plain data, so it can be saved and
 * restored with a device snapshot.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha384 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';

export interface RandomSource {
  /** Returns `n` fresh bytes. */
  bytes(n: number): Uint8Array;
}

/** Fills a buffer of at most 65536 bytes from the platform CSPRNG. */
export type SystemRandomFill = (out: Uint8Array) => void;

const webCryptoFill: SystemRandomFill = (out) => {
  crypto.getRandomValues(out);
};
let systemFill: SystemRandomFill = webCryptoFill;

/**
 * Bytes from the platform CSPRNG: WebCrypto's `getRandomValues`, unless a runtime edge has
 * installed its own reader of the same CSPRNG with {@link setSystemRandomFill} (Node's CLI
 * installs node:crypto's `randomFillSync`, which does not make Node load its WebCrypto).
 */
export const systemRandom: RandomSource = {
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    // getRandomValues fills at most 65536 bytes per call.
    for (let o = 0; o < n; o += 65536) systemFill(out.subarray(o, Math.min(n, o + 65536)));
    return out;
  },
};

/**
 * Makes {@link systemRandom} read the platform CSPRNG through `fill` (null: back to WebCrypto's
 * `getRandomValues`). For runtime edges only: `fill` must draw from the operating system's
 * CSPRNG, since everything unseeded (keys, GetRandom, module ids) comes from it.
 */
export function setSystemRandomFill(fill: SystemRandomFill | null): void {
  systemFill = fill ?? webCryptoFill;
}

const utf8 = new TextEncoder();
const BLOCK = 48;

/** A deterministic stream; `position` counts bytes drawn so far. */
export class SeededRandom implements RandomSource {
  private readonly key: Uint8Array;
  private readonly label: Uint8Array;
  position = 0;

  constructor(seed: Uint8Array, label: string, position = 0) {
    this.key = sha384(concatBytes(utf8.encode('nsm-emulator seed v1'), seed));
    this.label = utf8.encode(label);
    this.position = position;
  }

  private block(counter: number): Uint8Array {
    const msg = new Uint8Array(this.label.length + 9);
    msg.set(this.label);
    msg[this.label.length] = 0;
    new DataView(msg.buffer).setBigUint64(this.label.length + 1, BigInt(counter));
    return hmac(sha384, this.key, msg);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const counter = Math.floor(this.position / BLOCK);
      const skip = this.position % BLOCK;
      const take = Math.min(BLOCK - skip, n - o);
      out.set(this.block(counter).subarray(skip, skip + take), o);
      o += take;
      this.position += take;
    }
    return out;
  }
}

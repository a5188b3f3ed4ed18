/**
 * The device's system randomness through node:crypto (Node only): `randomFillSync` reads the same
 * operating-system CSPRNG as WebCrypto's `getRandomValues`, without making Node load its
 * WebCrypto implementation, which a command-line start would otherwise pay for on its first
 * random byte.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { setSystemRandomFill } from '../device/random.js';

/** Makes `systemRandom` (keys, GetRandom, module ids of unseeded devices) read through node:crypto. */
export function useNodeSystemRandom(): void {
  setSystemRandomFill((out) => {
    randomFillSync(out);
  });
}

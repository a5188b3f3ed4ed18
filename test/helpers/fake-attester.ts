/** An attester that returns a fixed marker plus what it was given, to test the device's side of Attestation. */
import type { AttestationInput, AttesterFactory } from '../../src/index.js';

export function recordingAttester(seen: AttestationInput[] = []): AttesterFactory {
  return () => ({
    async attest(input) {
      seen.push(input);
      return new Uint8Array([0xd0, 0xc0, seen.length]);
    },
  });
}

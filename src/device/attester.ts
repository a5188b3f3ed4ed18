/**
 * The seam between the device and whatever signs its attestation documents.
 *
 * The device gathers the inputs (module_id, the locked PCRs, the request's fields) and hands
 * them to an {@link Attester}; the attestation module supplies attesters backed by a test CA.
 * Attesters are made lazily, on the first Attestation request, from a factory that receives the
 * device's clock and its "attestation" randomness stream.
 * @module
 */
import type { PcrValue } from './pcr-bank.js';
import type { RandomSource } from './random.js';

export interface AttestationInput {
  readonly moduleId: string;
  /** Every locked PCR, ascending by index; copies the attester may keep. */
  readonly pcrs: readonly PcrValue[];
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
  readonly publicKey: Uint8Array | null;
}

export interface Attester {
  /** Returns the attestation document (COSE_Sign1 bytes). */
  attest(input: AttestationInput): Promise<Uint8Array>;
}

export interface AttesterEnv {
  /** Milliseconds since the Unix epoch. */
  readonly clock: () => number;
  /** Randomness for keys and serials; seeded when the device is. */
  readonly random: RandomSource;
}

export type AttesterFactory = (env: AttesterEnv) => Attester | Promise<Attester>;

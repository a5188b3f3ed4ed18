/**
 * The NSM as an enclave application sees it: seven requests, each a typed method. Code under
 * test can depend on this interface; tests pass an {@link NsmDevice}, or a plain object fake.
 * @module
 */
import type { NsmDescription } from '../wire/messages.js';

/** What DescribePCR answers: whether the PCR is locked, and its 48-byte value. */
export interface PcrDescription {
  readonly lock: boolean;
  readonly data: Uint8Array;
}

/** The optional inputs of an Attestation request (absent or null: sent as CBOR null). */
export interface AttestationOptions {
  /** Up to 1024 bytes, copied into the document's `user_data`. */
  readonly userData?: Uint8Array | null;
  /** Up to 1024 bytes, copied into the document's `nonce`. */
  readonly nonce?: Uint8Array | null;
  /** Up to 1024 bytes, copied into the document's `public_key`. */
  readonly publicKey?: Uint8Array | null;
}

/**
 * The Nitro Secure Module's requests as methods. Each rejects with an `NsmError` carrying the
 * device's error code (`InvalidIndex`, `ReadOnlyIndex`, `InputTooLarge`, ...) when the device
 * answers with an error.
 *
 * ```ts
 * async function sealKey(nsm: Nsm, publicKey: Uint8Array) {
 *   return nsm.attestation({ publicKey });
 * }
 * await sealKey(new NsmDevice(), key);                                   // the emulator
 * await sealKey({ ...fakeNsm, attestation: async () => fixedDoc }, key); // a hand-made fake
 * ```
 */
export interface Nsm {
  /** DescribePCR: the value of PCR `index` (0-31) and whether it is locked. */
  describePcr(index: number): Promise<PcrDescription>;
  /** ExtendPCR: PCR `index` becomes SHA-384(old value || data); resolves to the new value. */
  extendPcr(index: number, data: Uint8Array): Promise<Uint8Array>;
  /** LockPCR: makes PCR `index` read-only until the device is reset. */
  lockPcr(index: number): Promise<void>;
  /** LockPCRs: locks PCRs 0 to `range` - 1 (some may be locked already). */
  lockPcrs(range: number): Promise<void>;
  /** DescribeNSM: version, module id, PCR count, locked PCRs and digest. */
  describeNsm(): Promise<NsmDescription>;
  /** GetRandom: 256 random bytes. */
  getRandom(): Promise<Uint8Array>;
  /** Attestation: a signed attestation document (COSE_Sign1 bytes) over the locked PCRs. */
  attestation(options?: AttestationOptions): Promise<Uint8Array>;
}

/**
 * Boot configuration helpers: seeds, default module ids, and the per-field limit on
 * attestation inputs.
 * @module
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { RandomSource } from './random.js';

/**
 * Largest user_data, nonce or public_key accepted in an Attestation request. AWS's on-hardware
 * test sends 1024 bytes of each and expects success; larger fields get `InputTooLarge`.
 */
export const ATTESTATION_FIELD_MAX = 1024;

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Seeds are bytes, or hex text (an optional 0x is allowed). */
export function parseSeed(seed: Uint8Array | string): Uint8Array {
  if (seed instanceof Uint8Array) return seed.slice();
  const s = seed.startsWith('0x') ? seed.slice(2) : seed;
  if (!HEX.test(s) || s.length === 0) throw new TypeError('seed must be non-empty hex');
  return hexToBytes(s);
}

const hex = bytesToHex;

/** A random instance id shaped like EC2's: `i-0` and 16 hex digits. */
export function randomInstanceId(random: RandomSource): string {
  return `i-0${hex(random.bytes(8))}`;
}

/**
 * How long before the device comes up the enclave id says the enclave was launched: at least
 * `min`, less than `min + span` ms. A real enclave's NSM first serves its application some time
 * after launch (real documents show the leaf certificate issued 7 s to minutes after the launch
 * instant in the id, and the first document 3-4 s after that); the emulated device is created
 * when the application is ready, so its id encodes a launch 12-24 s earlier.
 */
export const LAUNCH_LEAD_MS = { min: 12_000, span: 12_000 } as const;

/**
 * The 8-byte enclave id after `-enc` in a module id, as in real ones: the enclave's launch time
 * as a 48-bit count of milliseconds since 1970 ({@link LAUNCH_LEAD_MS} before `bootMs`), then
 * 16 random bits. Both random parts come from the seed when the device is seeded, so a seeded
 * device with a fixed clock always gets the same id.
 */
export function enclaveId(random: RandomSource, bootMs: number): string {
  const b = new Uint8Array(8);
  const tail = random.bytes(2);
  const [hi, lo] = random.bytes(2);
  const lead = LAUNCH_LEAD_MS.min + ((((hi! << 8) | lo!) * LAUNCH_LEAD_MS.span) >>> 16);
  const ms = BigInt(Math.max(0, Math.floor(bootMs) - lead)) & 0xffff_ffff_ffffn;
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b.set(tail, 6);
  return hex(b);
}

/**
 * The parent instance id inside a module id: the part before the last `-enc` (all of it when
 * there is none). Used for PCR4 and the instance certificate when only `moduleId` is given.
 */
export function instanceIdOf(moduleId: string): string {
  const cut = moduleId.lastIndexOf('-enc');
  return cut > 0 ? moduleId.slice(0, cut) : moduleId;
}

/** `<instance id>-enc<16 hex>`, as in real documents. */
export function defaultModuleId(random: RandomSource, bootMs: number, instanceId: string): string {
  return `${instanceId}-enc${enclaveId(random, bootMs)}`;
}

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
 * The 8-byte enclave id after `-enc` in a module id. Real ones are a 48-bit millisecond
 * timestamp of the enclave's start followed by 16 random bits; a seeded device draws all eight
 * bytes (first byte 0x01, as in every real id) so the id depends on the seed alone.
 */
export function enclaveId(random: RandomSource, nowMs: number, seeded: boolean): string {
  if (seeded) {
    const b = random.bytes(8);
    b[0] = 0x01;
    return hex(b);
  }
  const b = new Uint8Array(8);
  const ms = BigInt(Math.max(0, Math.floor(nowMs))) & 0xffff_ffff_ffffn;
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b.set(random.bytes(2), 6);
  return hex(b);
}

/** `<instance id>-enc<16 hex>`, as in real documents. */
export function defaultModuleId(random: RandomSource, nowMs: number, instanceId: string | undefined, seeded: boolean): string {
  const instance = instanceId ?? randomInstanceId(random);
  return `${instance}-enc${enclaveId(random, nowMs, seeded)}`;
}

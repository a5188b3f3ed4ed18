/**
 * Request decoding: one CBOR item from the guest -> an {@link NsmRequest}, or the exact error
 * code the device answers with. Never throws.
 *
 * Accepted shapes (docs/protocol.md has the reasoning):
 * - `"DescribeNSM"` and `"GetRandom"` as bare text strings (serde unit variants);
 * - every other request as a one-entry map `{ "<Name>": { field: value, ... } }`;
 * - byte fields (`data`, `user_data`, `nonce`, `public_key`) as byte strings or, like QEMU, as
 *   text strings taken as their UTF-8 bytes; the Attestation fields may also be null or absent;
 * - `index` and `range` as unsigned integers up to 65535 (nsm-api's u16);
 * - unknown or non-text keys inside a request are ignored; a duplicated known key is refused.
 * Anything else is `InvalidOperation`; a request over 4096 bytes is `InputTooLarge`.
 * @module
 */
import type { ErrorCode } from '../device/error-code.js';
import { INDEX_MAX, REQUEST_MAX_SIZE } from '../device/limits.js';
import { type CborMap, type CborValue, decodeCbor, isCborNull } from './cbor-decode.js';
import type { NsmRequest } from './messages.js';

export type DecodedRequest = { ok: true; request: NsmRequest } | { ok: false; error: ErrorCode };

const INVALID: DecodedRequest = { ok: false, error: 'InvalidOperation' };
const TOO_LARGE: DecodedRequest = { ok: false, error: 'InputTooLarge' };
const DESCRIBE_NSM: DecodedRequest = { ok: true, request: { type: 'DescribeNSM' } };
const GET_RANDOM: DecodedRequest = { ok: true, request: { type: 'GetRandom' } };
const utf8 = new TextEncoder();

class Malformed extends Error {}

/** Collects the text-keyed fields of a request's inner map, refusing duplicates of `wanted`. */
function fields(inner: CborValue, wanted: readonly string[]): Map<string, CborValue> {
  if (inner.type !== 'map') throw new Malformed();
  const out = new Map<string, CborValue>();
  for (const [k, v] of (inner as CborMap).entries) {
    if (k.type !== 'text' || !wanted.includes(k.value)) continue;
    if (out.has(k.value)) throw new Malformed();
    out.set(k.value, v);
  }
  return out;
}

function u16(v: CborValue | undefined): number {
  if (v?.type !== 'uint' || typeof v.value !== 'number' || v.value > INDEX_MAX) throw new Malformed();
  return v.value;
}

function byteField(v: CborValue | undefined): Uint8Array {
  if (v?.type === 'bytes') return v.value;
  if (v?.type === 'text') return utf8.encode(v.value);
  throw new Malformed();
}

function optionalByteField(v: CborValue | undefined): Uint8Array | null {
  return v === undefined || isCborNull(v) ? null : byteField(v);
}

function structRequest(name: string, inner: CborValue): NsmRequest | null {
  switch (name) {
    case 'DescribePCR':
      return { type: 'DescribePCR', index: u16(fields(inner, ['index']).get('index')) };
    case 'ExtendPCR': {
      const f = fields(inner, ['index', 'data']);
      return { type: 'ExtendPCR', index: u16(f.get('index')), data: byteField(f.get('data')) };
    }
    case 'LockPCR':
      return { type: 'LockPCR', index: u16(fields(inner, ['index']).get('index')) };
    case 'LockPCRs':
      return { type: 'LockPCRs', range: u16(fields(inner, ['range']).get('range')) };
    case 'Attestation': {
      const f = fields(inner, ['user_data', 'nonce', 'public_key']);
      return {
        type: 'Attestation',
        userData: optionalByteField(f.get('user_data')),
        nonce: optionalByteField(f.get('nonce')),
        publicKey: optionalByteField(f.get('public_key')),
      };
    }
    default:
      return null;
  }
}

/** Decodes one raw request. Bad input yields the device's error code, never an exception. */
export function decodeRequest(bytes: Uint8Array): DecodedRequest {
  if (bytes.length > REQUEST_MAX_SIZE) return TOO_LARGE;
  let root: CborValue;
  try {
    root = decodeCbor(bytes);
  } catch {
    return INVALID;
  }
  if (root.type === 'text') {
    if (root.value === 'DescribeNSM') return DESCRIBE_NSM;
    if (root.value === 'GetRandom') return GET_RANDOM;
    return INVALID;
  }
  if (root.type !== 'map' || root.entries.length !== 1) return INVALID;
  const [key, inner] = root.entries[0]!;
  if (key.type !== 'text') return INVALID;
  try {
    const request = structRequest(key.value, inner);
    return request ? { ok: true, request } : INVALID;
  } catch (e) {
    if (e instanceof Malformed) return INVALID;
    throw e;
  }
}

/**
 * Response decoding, the client side: CBOR from a device (ours, QEMU's or a real one) ->
 * {@link NsmResponse}. Key order inside a response is not significant (QEMU writes DescribePCR
 * as `data, lock`, nsm-api as `lock, data`). Throws {@link ResponseDecodeError} on anything
 * that is not a well-formed response.
 * @module
 */
import { ERROR_CODES, type ErrorCode } from '../device/error-code.js';
import { type CborMap, type CborValue, cborMapGet, decodeCbor } from './cbor-decode.js';
import type { NsmResponse } from './messages.js';

export class ResponseDecodeError extends Error {
  override readonly name = 'ResponseDecodeError';
}

function fail(what: string): never {
  throw new ResponseDecodeError(`malformed NSM response: ${what}`);
}

function get(map: CborMap, key: string): CborValue {
  return cborMapGet(map, key) ?? fail(`missing field '${key}'`);
}

function bytes(map: CborMap, key: string): Uint8Array {
  const v = get(map, key);
  return v.type === 'bytes' ? v.value : fail(`'${key}' is not a byte string`);
}

function uint(map: CborMap, key: string): number {
  const v = get(map, key);
  return v.type === 'uint' && typeof v.value === 'number' ? v.value : fail(`'${key}' is not an unsigned integer`);
}

function text(map: CborMap, key: string): string {
  const v = get(map, key);
  return v.type === 'text' ? v.value : fail(`'${key}' is not a text string`);
}

/**
 * Reads a device's CBOR answer into an {@link NsmResponse}.
 * @throws ResponseDecodeError when the bytes are not one well-formed NSM response.
 */
export function decodeResponse(raw: Uint8Array): NsmResponse {
  const root = decodeCbor(raw);
  if (root.type === 'text') {
    if (root.value === 'LockPCR' || root.value === 'LockPCRs') return { type: root.value };
    return fail(`unknown unit response '${root.value}'`);
  }
  if (root.type !== 'map' || root.entries.length !== 1) return fail('root is not a one-entry map or text');
  const [k, inner] = root.entries[0]!;
  if (k.type !== 'text') return fail('variant name is not text');
  if (k.value === 'Error') {
    if (inner.type !== 'text' || !(ERROR_CODES as readonly string[]).includes(inner.value)) return fail('unknown error code');
    return { type: 'Error', code: inner.value as ErrorCode };
  }
  if (inner.type !== 'map') return fail(`'${k.value}' does not hold a map`);
  switch (k.value) {
    case 'DescribePCR': {
      const lock = get(inner, 'lock');
      if (lock.type !== 'simple' || (lock.value !== 20 && lock.value !== 21)) return fail("'lock' is not a boolean");
      return { type: 'DescribePCR', lock: lock.value === 21, data: bytes(inner, 'data') };
    }
    case 'ExtendPCR':
      return { type: 'ExtendPCR', data: bytes(inner, 'data') };
    case 'DescribeNSM': {
      const locked = get(inner, 'locked_pcrs');
      if (locked.type !== 'array') return fail("'locked_pcrs' is not an array");
      const digest = text(inner, 'digest');
      if (digest !== 'SHA256' && digest !== 'SHA384' && digest !== 'SHA512') return fail(`unknown digest '${digest}'`);
      return {
        type: 'DescribeNSM',
        versionMajor: uint(inner, 'version_major'),
        versionMinor: uint(inner, 'version_minor'),
        versionPatch: uint(inner, 'version_patch'),
        moduleId: text(inner, 'module_id'),
        maxPcrs: uint(inner, 'max_pcrs'),
        lockedPcrs: locked.items.map((v) => (v.type === 'uint' && typeof v.value === 'number' ? v.value : fail('bad locked_pcrs entry'))),
        digest,
      };
    }
    case 'Attestation':
      return { type: 'Attestation', document: bytes(inner, 'document') };
    case 'GetRandom':
      return { type: 'GetRandom', random: bytes(inner, 'random') };
    default:
      return fail(`unknown response '${k.value}'`);
  }
}

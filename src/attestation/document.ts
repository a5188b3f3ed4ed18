/**
 * The attestation document's bytes, exactly as the real NSM writes them.
 *
 * An untagged COSE_Sign1 (`84`): protected header `44 a1 01 38 22` ({1: -35}, ES384), empty
 * unprotected map `a0`, the payload as a byte string, and a 96-byte r || s signature over the
 * COSE Sig_structure. The payload is a map with text keys in AWS's fixed order
 * `module_id, digest, timestamp, pcrs, certificate, cabundle, public_key, user_data, nonce`;
 * absent optional values are written as null; the timestamp is always `1b` + 8 bytes of
 * milliseconds. Since 2025 AWS opens the map as indefinite-length (`bf ... ff`); before, it was
 * definite (`a9`). {@link PayloadEncoder} caches everything that stays fixed while a leaf
 * certificate is in use, so each document costs one pass over the changing fields.
 * @module
 */
import { concatBytes } from '@noble/hashes/utils.js';
import { CborWriter } from '../wire/cbor-encode.js';

export type PayloadMapForm = 'indefinite' | 'definite';

/** The protected header bucket: bstr(4) holding {1: -35}. */
export const PROTECTED_HEADER = new Uint8Array([0x44, 0xa1, 0x01, 0x38, 0x22]);

/** `["Signature1", protected, h'', ...`: the Sig_structure up to the payload. */
const SIG_STRUCTURE_PREFIX = new Uint8Array([
  0x84, 0x6a, 0x53, 0x69, 0x67, 0x6e, 0x61, 0x74, 0x75, 0x72, 0x65, 0x31, ...PROTECTED_HEADER, 0x40,
]);

/** `[protected, {}, ...`: the COSE_Sign1 up to the payload. */
const SIGN1_PREFIX = new Uint8Array([0x84, ...PROTECTED_HEADER, 0xa0]);

const SIGNATURE_HEAD = new Uint8Array([0x58, 0x60]);

export interface PcrEntry {
  readonly index: number;
  readonly data: Uint8Array;
}

/** Everything a payload holds. */
export interface PayloadFields {
  readonly moduleId: string;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** Ascending by index. */
  readonly pcrs: readonly PcrEntry[];
  readonly certificate: Uint8Array;
  /** Root first. */
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
}

/** Writes payloads for one module_id and one certificate chain. */
export class PayloadEncoder {
  private readonly head: Uint8Array;
  private readonly chain: Uint8Array;

  constructor(
    moduleId: string,
    certificate: Uint8Array,
    cabundle: readonly Uint8Array[],
    private readonly form: PayloadMapForm = 'indefinite',
  ) {
    const h = new CborWriter(128);
    if (form === 'indefinite') h.mapIndefinite();
    else h.mapHeader(9);
    h.text('module_id').text(moduleId).text('digest').text('SHA384').text('timestamp');
    this.head = h.finish();
    const c = new CborWriter(certificate.length + 4096);
    c.text('certificate').bytes(certificate).text('cabundle').arrayHeader(cabundle.length);
    for (const cert of cabundle) c.bytes(cert);
    this.chain = c.finish();
  }

  encode(timestamp: number, pcrs: readonly PcrEntry[], publicKey: Uint8Array | null, userData: Uint8Array | null, nonce: Uint8Array | null): Uint8Array {
    const inputs = (publicKey?.length ?? 0) + (userData?.length ?? 0) + (nonce?.length ?? 0);
    const w = new CborWriter(this.head.length + this.chain.length + pcrs.length * 51 + inputs + 64);
    w.raw(this.head).uint64(timestamp).text('pcrs').mapHeader(pcrs.length);
    for (const p of pcrs) w.uint(p.index).bytes(p.data);
    w.raw(this.chain).text('public_key').bytesOrNull(publicKey).text('user_data').bytesOrNull(userData).text('nonce').bytesOrNull(nonce);
    if (this.form === 'indefinite') w.end();
    return w.finish();
  }
}

/** The payload bytes for the given fields. */
export function encodePayload(f: PayloadFields, form: PayloadMapForm = 'indefinite'): Uint8Array {
  return new PayloadEncoder(f.moduleId, f.certificate, f.cabundle, form).encode(f.timestamp, f.pcrs, f.publicKey, f.userData, f.nonce);
}

function bstrHead(length: number): Uint8Array {
  return new CborWriter(9).head(2, length).finish();
}

/** `["Signature1", h'a1013822', h'', payload]`: the bytes ES384 signs. */
export function sigStructure(payload: Uint8Array): Uint8Array {
  return concatBytes(SIG_STRUCTURE_PREFIX, bstrHead(payload.length), payload);
}

/** The untagged COSE_Sign1 around a payload and its 96-byte signature. */
export function encodeCoseSign1(payload: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== 96) throw new RangeError(`an ES384 signature is 96 bytes, got ${signature.length}`);
  return concatBytes(SIGN1_PREFIX, bstrHead(payload.length), payload, SIGNATURE_HEAD, signature);
}

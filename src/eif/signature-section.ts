/**
 * The signature section's bytes: what serde_cbor writes for AWS's `Vec<PcrSignature>`, where
 * every byte vector is a CBOR array of small unsigned integers (not a byte string), and the
 * `PcrInfo` payload that the COSE_Sign1 inside signs.
 * @module
 */
import { CborWriter } from '../wire/cbor-encode.js';
import { type CborValue, CborDecodeError, decodeCbor } from '../wire/cbor-decode.js';

export interface PcrSignatureEntry {
  /** The signing certificate as stored: the PEM file's bytes. */
  readonly signingCertificate: Uint8Array;
  /** The untagged COSE_Sign1 bytes. */
  readonly signature: Uint8Array;
}

/** Why a signature section is malformed; `offset` is within the section data. */
export class SignatureSectionError extends Error {
  override readonly name = 'SignatureSectionError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

function byteArray(w: CborWriter, bytes: Uint8Array): void {
  w.arrayHeader(bytes.length);
  for (const b of bytes) w.uint(b);
}

/** CBOR of `PcrInfo { register_index, register_value }`: the payload signed for PCR0. */
export function encodePcrInfo(index: number, value: Uint8Array): Uint8Array {
  const w = new CborWriter(256);
  w.mapHeader(2).text('register_index').int(index).text('register_value');
  byteArray(w, value);
  return w.finish();
}

/** The whole signature section: an array of `{signing_certificate, signature}` maps. */
export function encodeSignatureSection(entries: readonly PcrSignatureEntry[]): Uint8Array {
  const w = new CborWriter(4096);
  w.arrayHeader(entries.length);
  for (const e of entries) {
    w.mapHeader(2).text('signing_certificate');
    byteArray(w, e.signingCertificate);
    w.text('signature');
    byteArray(w, e.signature);
  }
  return w.finish();
}

function toBytes(v: CborValue | undefined, field: string): Uint8Array {
  if (!v || v.type !== 'array') throw new SignatureSectionError(`${field} is not an array of byte values`, 0);
  const out = new Uint8Array(v.items.length);
  v.items.forEach((it, i) => {
    if (it.type !== 'uint' || typeof it.value !== 'number' || it.value > 255) {
      throw new SignatureSectionError(`${field}[${i}] is not an unsigned integer below 256`, 0);
    }
    out[i] = it.value;
  });
  return out;
}

/**
 * Decodes a signature section. Like QEMU, requires a non-empty array whose first element is a
 * 2-entry map with `signing_certificate` first, then `signature`.
 */
export function decodeSignatureSection(bytes: Uint8Array): PcrSignatureEntry[] {
  let root: CborValue;
  try {
    root = decodeCbor(bytes, { maxDepth: 8 });
  } catch (e) {
    if (e instanceof CborDecodeError) throw new SignatureSectionError(`not CBOR: ${e.message}`, e.offset);
    throw e;
  }
  if (root.type !== 'array' || root.items.length === 0) throw new SignatureSectionError('expected a non-empty CBOR array of PCR signatures', 0);
  return root.items.map((item, i) => {
    if (item.type !== 'map' || item.entries.length !== 2) throw new SignatureSectionError(`entry ${i} is not a map of 2 entries`, 0);
    const [[k0, v0], [k1, v1]] = item.entries as [[CborValue, CborValue], [CborValue, CborValue]];
    if (k0.type !== 'text' || k0.value !== 'signing_certificate' || k1.type !== 'text' || k1.value !== 'signature') {
      throw new SignatureSectionError(`entry ${i} must have the keys "signing_certificate" then "signature"`, 0);
    }
    const signingCertificate = toBytes(v0, `entry ${i} signing_certificate`);
    if (signingCertificate.length === 0) throw new SignatureSectionError(`entry ${i} signing_certificate is empty`, 0);
    return { signingCertificate, signature: toBytes(v1, `entry ${i} signature`) };
  });
}

/**
 * Response encoding, exactly as nsm-api's serde_cbor encoding of `Response` produces it:
 * unit variants as bare text, struct variants as one-entry maps with fields in Rust declaration
 * order, `{"Error": "<Name>"}`, byte strings for bytes, shortest-form integers, definite-length
 * containers. The GetRandom response therefore starts with the exact prefix the Linux hwrng
 * parser checks: `a1 69 "GetRandom" a1 66 "random" 59 01 00`.
 * @module
 */
import { PCR_LENGTH } from '../device/limits.js';
import { CborWriter } from './cbor-encode.js';
import type { NsmResponse } from './messages.js';

function prefix(build: (w: CborWriter) => unknown): Uint8Array {
  const w = new CborWriter(64);
  build(w);
  return w.finish();
}

// Fixed-layout responses are a constant prefix followed by the variable bytes.
const DESCRIBE_PCR = prefix((w) => w.mapHeader(1).text('DescribePCR').mapHeader(2).text('lock'));
const DESCRIBE_PCR_DATA = prefix((w) => w.text('data').head(2, PCR_LENGTH));
const EXTEND_PCR = prefix((w) => w.mapHeader(1).text('ExtendPCR').mapHeader(1).text('data').head(2, PCR_LENGTH));
const LOCK_PCR = prefix((w) => w.text('LockPCR'));
const LOCK_PCRS = prefix((w) => w.text('LockPCRs'));

function describePcr(lock: boolean, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(DESCRIBE_PCR.length + 1 + DESCRIBE_PCR_DATA.length + PCR_LENGTH);
  out.set(DESCRIBE_PCR);
  let o = DESCRIBE_PCR.length;
  out[o++] = lock ? 0xf5 : 0xf4;
  out.set(DESCRIBE_PCR_DATA, o);
  out.set(data, o + DESCRIBE_PCR_DATA.length);
  return out;
}

function withPrefix(p: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(p.length + data.length);
  out.set(p);
  out.set(data, p.length);
  return out;
}

/** Encodes one response. */
export function encodeResponse(r: NsmResponse): Uint8Array {
  switch (r.type) {
    case 'DescribePCR':
      return describePcr(r.lock, r.data);
    case 'ExtendPCR':
      return withPrefix(EXTEND_PCR, r.data);
    case 'LockPCR':
      return LOCK_PCR.slice();
    case 'LockPCRs':
      return LOCK_PCRS.slice();
    case 'DescribeNSM': {
      // Fixed part 125 bytes; module_id up to 2 + length (ASCII); each index 1 or 2.
      const w = new CborWriter(128 + 3 * r.moduleId.length + 2 * r.lockedPcrs.length + r.digest.length).mapHeader(1).text('DescribeNSM').mapHeader(7);
      w.text('version_major').uint(r.versionMajor);
      w.text('version_minor').uint(r.versionMinor);
      w.text('version_patch').uint(r.versionPatch);
      w.text('module_id').text(r.moduleId);
      w.text('max_pcrs').uint(r.maxPcrs);
      w.text('locked_pcrs').arrayHeader(r.lockedPcrs.length);
      for (const i of r.lockedPcrs) w.uint(i);
      w.text('digest').text(r.digest);
      return w.finish();
    }
    case 'Attestation':
      return new CborWriter(r.document.length + 32)
        .mapHeader(1)
        .text('Attestation')
        .mapHeader(1)
        .text('document')
        .bytes(r.document)
        .finish();
    case 'GetRandom':
      return new CborWriter(r.random.length + 32)
        .mapHeader(1)
        .text('GetRandom')
        .mapHeader(1)
        .text('random')
        .bytes(r.random)
        .finish();
    case 'Error':
      return new CborWriter(32).mapHeader(1).text('Error').text(r.code).finish();
  }
}

/**
 * ECDSA verification through node:crypto (OpenSSL) for the EIF signature check (Node only): the
 * {@link EcdsaVerifier} the CLI gives describe-eif, and what bootProfileFromEifFile checks with,
 * so that checking a signed image never loads @noble/curves (loading it and verifying in pure JS
 * cost more than the rest of a small image's describe-eif). Same answers as the default
 * verifier (test/eif-verifier.test.ts checks both on the vectors and on OpenSSL's signatures).
 * @module
 */
import { createPublicKey, verify } from 'node:crypto';
import type { EcdsaVerifier } from '../eif/cose-sign1.js';
import type { EcCurve } from '../x509/oids.js';

/** Per curve: its hash, and the DER of `SEQUENCE { id-ecPublicKey, curve }` (the SPKI's AlgorithmIdentifier). */
const CURVES: Record<EcCurve, { hash: string; algorithm: string }> = {
  'P-256': { hash: 'sha256', algorithm: '301306072a8648ce3d020106082a8648ce3d030107' },
  'P-384': { hash: 'sha384', algorithm: '301006072a8648ce3d020106052b81040022' },
  'P-521': { hash: 'sha512', algorithm: '301006072a8648ce3d020106052b81040023' },
};

/** A DER length (the SubjectPublicKeyInfo of a P-521 point is over 127 bytes). */
function derLength(n: number): Buffer {
  return n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
}

/** The SubjectPublicKeyInfo of a SEC1 point on `curve`. */
function spki(curve: EcCurve, point: Uint8Array): Buffer {
  const algorithm = Buffer.from(CURVES[curve].algorithm, 'hex');
  const bits = Buffer.concat([Buffer.from([0x03]), derLength(point.length + 1), Buffer.from([0]), point]);
  return Buffer.concat([Buffer.from([0x30]), derLength(algorithm.length + bits.length), algorithm, bits]);
}

/** {@link EcdsaVerifier} through node:crypto: r || s signatures (`ieee-p1363`), the curve's own hash. */
export const nodeEcdsaVerifier: EcdsaVerifier = (curve, point, message, signature) => {
  try {
    const key = createPublicKey({ key: spki(curve, point), format: 'der', type: 'spki' });
    return verify(CURVES[curve].hash, message, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
};

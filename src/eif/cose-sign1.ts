/**
 * The COSE_Sign1 that signs PCR0 in a signed EIF, as AWS's builder makes it: untagged, the
 * protected header `{1: alg}`, an empty unprotected map, the `PcrInfo` payload, and an ECDSA
 * signature r || s over the `Signature1` structure, hashed with the curve's own hash.
 * @module
 */
import { CborWriter } from '../wire/cbor-encode.js';
import { type CborValue, CborDecodeError, decodeCbor } from '../wire/cbor-decode.js';
import { type NistCurves, nistCurves } from '../x509/nist-curves.js';
import type { EcCurve } from '../x509/oids.js';
import type { EcPublicKey } from './certificate.js';
import { EifSignatureError } from './errors.js';

export const COSE_ALGORITHMS = { ES256: -7, ES384: -35, ES512: -36 } as const;
export type CoseAlgorithm = keyof typeof COSE_ALGORITHMS;

const BY_CURVE: Record<EcCurve, { alg: CoseAlgorithm; ecdsa: (c: NistCurves) => NistCurves['p256']; size: number }> = {
  'P-256': { alg: 'ES256', ecdsa: (c) => c.p256, size: 32 },
  'P-384': { alg: 'ES384', ecdsa: (c) => c.p384, size: 48 },
  'P-521': { alg: 'ES512', ecdsa: (c) => c.p521, size: 66 },
};

export interface CoseSign1 {
  readonly protectedBytes: Uint8Array;
  readonly algorithm: number | undefined;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

function protectedHeader(alg: number): Uint8Array {
  return new CborWriter(8).mapHeader(1).uint(1).int(alg).finish();
}

/** `["Signature1", protected, h'', payload]`: the bytes ECDSA signs. */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return new CborWriter(64 + payload.length).arrayHeader(4).text('Signature1').bytes(protectedBytes).bytes(new Uint8Array(0)).bytes(payload).finish();
}

/** The curve's COSE algorithm name. */
export function algorithmForCurve(curve: EcCurve): CoseAlgorithm {
  return BY_CURVE[curve].alg;
}

/**
 * Signs `payload` (deterministic ECDSA, RFC 6979) and returns the untagged COSE_Sign1 bytes.
 * Needs @noble/curves loaded (`loadNistCurves()`), as {@link verifyCoseSign1} does.
 */
export function signCoseSign1(payload: Uint8Array, key: { curve: EcCurve; secret: Uint8Array }): Uint8Array {
  const { alg, ecdsa } = BY_CURVE[key.curve];
  const prot = protectedHeader(COSE_ALGORITHMS[alg]);
  const sig = ecdsa(nistCurves()).sign(sigStructure(prot, payload), key.secret, { prehash: true });
  return new CborWriter(64 + payload.length + sig.length).arrayHeader(4).bytes(prot).mapHeader(0).bytes(payload).bytes(sig).finish();
}

/** Decodes a COSE_Sign1 (tagged 18 or not). Throws {@link EifSignatureError} `BAD_COSE`. */
export function decodeCoseSign1(bytes: Uint8Array): CoseSign1 {
  let v: CborValue;
  try {
    v = decodeCbor(bytes, { maxDepth: 8 });
  } catch (e) {
    if (e instanceof CborDecodeError) throw new EifSignatureError('BAD_COSE', `PCR0 signature is not CBOR: ${e.message}`);
    throw e;
  }
  if (v.type === 'tag' && v.tag === 18) v = v.value;
  if (v.type !== 'array' || v.items.length !== 4) throw new EifSignatureError('BAD_COSE', 'PCR0 signature is not a COSE_Sign1 (an array of 4)');
  const [p, u, payload, sig] = v.items as [CborValue, CborValue, CborValue, CborValue];
  if (p.type !== 'bytes' || u.type !== 'map' || payload.type !== 'bytes' || sig.type !== 'bytes') {
    throw new EifSignatureError('BAD_COSE', 'PCR0 signature COSE_Sign1 fields have the wrong types');
  }
  let algorithm: number | undefined;
  if (p.value.length > 0) {
    let h: CborValue;
    try {
      h = decodeCbor(p.value);
    } catch {
      throw new EifSignatureError('BAD_COSE', 'PCR0 signature protected header is not CBOR');
    }
    if (h.type !== 'map') throw new EifSignatureError('BAD_COSE', 'PCR0 signature protected header is not a map');
    for (const [k, val] of h.entries) {
      if (k.type === 'uint' && k.value === 1 && (val.type === 'nint' || val.type === 'uint') && typeof val.value === 'number') {
        algorithm = val.value;
      }
    }
  }
  return { protectedBytes: p.value, algorithm, payload: payload.value, signature: sig.value };
}

/**
 * Checks an ECDSA signature: `signature` is r || s (twice the curve's size), over `message`
 * hashed with the curve's own hash (SHA-256, SHA-384, SHA-512 for P-256, P-384, P-521), with
 * the SEC1 public `point`; high-S signatures are accepted, as AWS's verifier does. True when it
 * verifies; false when it does not or the point is not on the curve. Passed to
 * {@link verifyCoseSign1} (and checkEifSignature, describeEif) to check with another
 * implementation than the default {@link nobleEcdsaVerifier}, such as nsm-emulator/node's
 * `nodeEcdsaVerifier` (OpenSSL).
 */
export type EcdsaVerifier = (curve: EcCurve, point: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

/**
 * The default {@link EcdsaVerifier}: @noble/curves (pure JS, any runtime). Needs it loaded
 * (`loadNistCurves()`, which measureEif does for a signed image unless told of another verifier);
 * throws NistCurvesNotLoadedError otherwise.
 */
export const nobleEcdsaVerifier: EcdsaVerifier = (curve, point, message, signature) => {
  const ecdsa = BY_CURVE[curve].ecdsa(nistCurves());
  try {
    return ecdsa.verify(signature, message, point, { prehash: true, lowS: false });
  } catch {
    return false;
  }
};

/**
 * Checks a COSE_Sign1 with an EC public key: the algorithm must be the one that goes with the
 * key's curve and the signature must verify (with `verify`, default {@link nobleEcdsaVerifier}).
 * Throws {@link EifSignatureError}.
 */
export function verifyCoseSign1(cose: CoseSign1, key: EcPublicKey, verify: EcdsaVerifier = nobleEcdsaVerifier): void {
  const { alg, size } = BY_CURVE[key.curve];
  if (cose.algorithm !== COSE_ALGORITHMS[alg]) {
    throw new EifSignatureError('UNSUPPORTED_ALGORITHM', `PCR0 signature algorithm ${cose.algorithm ?? '(none)'} does not match the ${key.curve} certificate key (expected ${alg}, ${COSE_ALGORITHMS[alg]})`);
  }
  const ok = cose.signature.length === 2 * size && verify(key.curve, key.point, sigStructure(cose.protectedBytes, cose.payload), cose.signature);
  if (!ok) throw new EifSignatureError('BAD_SIGNATURE', 'PCR0 signature does not verify with the signing certificate key');
}

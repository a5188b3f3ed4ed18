/**
 * Reading EC private keys: the PKCS#8 wrapper (RFC 5208, `PRIVATE KEY`) and the ECPrivateKey
 * inside it or on its own (RFC 5915 / SEC1, `EC PRIVATE KEY`). Structure only: which curves and
 * sizes are acceptable is the caller's decision. Read strictly, like certificates: every field's
 * tag, order and count checked.
 * @module
 */
import { DerError, DerFields, TAG, bitStringBytes, contextTag, expectTag, oidValue, readDerExact, smallUnsigned } from './der.js';

/** A PKCS#8 PrivateKeyInfo: the key algorithm, its curve when named, and the wrapped key. */
export interface Pkcs8Key {
  readonly algorithm: string;
  /** The named-curve OID of the algorithm parameters, or null. */
  readonly curve: string | null;
  /** The privateKey OCTET STRING contents (for EC: an ECPrivateKey). */
  readonly privateKey: Uint8Array;
}

/** An ECPrivateKey's scalar and its optional parameters and public key. */
export interface EcPrivateKeyFields {
  /** The privateKey octets as stored. */
  readonly secret: Uint8Array;
  /** The named-curve OID of the [0] parameters, or null. */
  readonly curve: string | null;
  /** The SEC1 point of the [1] publicKey, or null. */
  readonly publicKey: Uint8Array | null;
}

/** Takes apart a PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958): every field checked, nothing after the last. */
export function readPkcs8(bytes: Uint8Array): Pkcs8Key {
  const f = new DerFields(expectTag(readDerExact(bytes, 'PKCS#8 key'), TAG.SEQUENCE, 'PKCS#8 key'), 'PKCS#8 key');
  const version = smallUnsigned(f.next(TAG.INTEGER, 'version'), 'PKCS#8 version', 1);
  const alg = new DerFields(f.next(TAG.SEQUENCE, 'algorithm'), 'PKCS#8 algorithm');
  const algorithm = oidValue(alg.next(TAG.OID, 'algorithm'), 'PKCS#8 algorithm');
  const params = alg.peekTag() === undefined ? null : alg.any('parameters');
  alg.end();
  const curve = params?.tag === TAG.OID ? oidValue(params, 'PKCS#8 algorithm parameters') : null;
  const privateKey = f.next(TAG.OCTET_STRING, 'privateKey').value;
  f.optional(contextTag(0, true)); // attributes: not used
  const publicKey = f.optional(contextTag(1, false));
  if (publicKey) {
    if (version !== 1) throw new DerError('PKCS#8 key: publicKey [1] in a version 1 (v1 = 0) key');
    bitStringBytes({ ...publicKey, tag: TAG.BIT_STRING }, 'PKCS#8 publicKey');
  }
  f.end();
  return { algorithm, curve, privateKey };
}

/** Takes apart an ECPrivateKey (RFC 5915): version 1, the key, then [0] parameters and [1] publicKey, each optional. */
export function readEcPrivateKey(bytes: Uint8Array): EcPrivateKeyFields {
  const f = new DerFields(expectTag(readDerExact(bytes, 'ECPrivateKey'), TAG.SEQUENCE, 'ECPrivateKey'), 'ECPrivateKey');
  if (smallUnsigned(f.next(TAG.INTEGER, 'version'), 'ECPrivateKey version', 1) !== 1) throw new DerError('ECPrivateKey version: expected 1');
  const secret = f.next(TAG.OCTET_STRING, 'privateKey').value;
  let curve: string | null = null;
  let publicKey: Uint8Array | null = null;
  const params = f.optional(contextTag(0, true));
  if (params) {
    const p = new DerFields(params, 'ECPrivateKey parameters');
    curve = oidValue(p.next(TAG.OID, 'namedCurve'), 'ECPrivateKey parameters');
    p.end();
  }
  const pub = f.optional(contextTag(1, true));
  if (pub) {
    const p = new DerFields(pub, 'ECPrivateKey publicKey');
    publicKey = bitStringBytes(p.next(TAG.BIT_STRING, 'BIT STRING'), 'ECPrivateKey publicKey');
    p.end();
  }
  f.end();
  return { secret, curve, publicKey };
}

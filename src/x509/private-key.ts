/**
 * Reading EC private keys: the PKCS#8 wrapper (RFC 5208, `PRIVATE KEY`) and the ECPrivateKey
 * inside it or on its own (RFC 5915 / SEC1, `EC PRIVATE KEY`). Structure only: which curves and
 * sizes are acceptable is the caller's decision.
 * @module
 */
import { DerError, TAG, contextTag, derChildren, expectTag, oidText, readDerExact } from './der.js';

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

/** Takes apart a PKCS#8 PrivateKeyInfo. */
export function readPkcs8(bytes: Uint8Array): Pkcs8Key {
  const top = derChildren(expectTag(readDerExact(bytes, 'PKCS#8 key'), TAG.SEQUENCE, 'PKCS#8 key'));
  expectTag(top[0], TAG.INTEGER, 'PKCS#8 version');
  const alg = derChildren(expectTag(top[1], TAG.SEQUENCE, 'PKCS#8 algorithm'));
  const algorithm = oidText(expectTag(alg[0], TAG.OID, 'PKCS#8 algorithm').value);
  const curve = alg[1]?.tag === TAG.OID ? oidText(alg[1].value) : null;
  const privateKey = expectTag(top[2], TAG.OCTET_STRING, 'PKCS#8 privateKey').value;
  return { algorithm, curve, privateKey };
}

/** Takes apart an ECPrivateKey. */
export function readEcPrivateKey(bytes: Uint8Array): EcPrivateKeyFields {
  const ec = derChildren(expectTag(readDerExact(bytes, 'ECPrivateKey'), TAG.SEQUENCE, 'ECPrivateKey'));
  const secret = expectTag(ec[1], TAG.OCTET_STRING, 'ECPrivateKey privateKey').value;
  let curve: string | null = null;
  let publicKey: Uint8Array | null = null;
  for (const node of ec.slice(2)) {
    if (node.tag === contextTag(0, true) && curve === null) {
      curve = oidText(expectTag(derChildren(node)[0], TAG.OID, 'ECPrivateKey parameters').value);
    } else if (node.tag === contextTag(1, true) && publicKey === null) {
      const bits = expectTag(derChildren(node)[0], TAG.BIT_STRING, 'ECPrivateKey publicKey').value;
      if (bits[0] !== 0) throw new DerError('ECPrivateKey publicKey: unused bits');
      publicKey = bits.subarray(1);
    }
  }
  return { secret, curve, publicKey };
}

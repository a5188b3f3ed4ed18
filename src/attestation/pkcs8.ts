/**
 * P-384 private keys as PKCS#8 (RFC 5208) wrapping an RFC 5915 ECPrivateKey, the form OpenSSL,
 * WebCrypto and Node write (`-----BEGIN PRIVATE KEY-----`).
 * @module
 */
import {
  DerError,
  TAG,
  contextTag,
  der,
  derBitString,
  derChildren,
  derOctetString,
  derOid,
  derSequence,
  derSmallInt,
  expectTag,
  oidText,
  readDerExact,
} from './der.js';
import { P384Key, P384_SIZE } from './p384.js';
import { OID } from './x509-build.js';

/** PKCS#8 DER of a P-384 key, public key included. */
export function encodePkcs8(key: P384Key): Uint8Array {
  const ecPrivateKey = derSequence(
    derSmallInt(1),
    derOctetString(key.privateKey),
    der(contextTag(1, true), derBitString(key.publicKey)),
  );
  return derSequence(derSmallInt(0), derSequence(derOid(OID.ecPublicKey), derOid(OID.secp384r1)), derOctetString(ecPrivateKey));
}

/** Reads a PKCS#8 P-384 key; the public key is derived when the file leaves it out. */
export function decodePkcs8(bytes: Uint8Array): P384Key {
  const top = derChildren(expectTag(readDerExact(bytes, 'PKCS#8 key'), TAG.SEQUENCE, 'PKCS#8 key'));
  expectTag(top[0], TAG.INTEGER, 'PKCS#8 version');
  const alg = derChildren(expectTag(top[1], TAG.SEQUENCE, 'PKCS#8 algorithm'));
  const algOid = oidText(expectTag(alg[0], TAG.OID, 'PKCS#8 algorithm').value);
  const curve = alg[1]?.tag === TAG.OID ? oidText(alg[1].value) : '';
  if (algOid !== OID.ecPublicKey || curve !== OID.secp384r1) {
    throw new DerError(`PKCS#8 key: expected an EC P-384 key (${OID.ecPublicKey} / ${OID.secp384r1}), found ${algOid} ${curve}`);
  }
  const inner = expectTag(top[2], TAG.OCTET_STRING, 'PKCS#8 privateKey');
  const ec = derChildren(expectTag(readDerExact(inner.value, 'ECPrivateKey'), TAG.SEQUENCE, 'ECPrivateKey'));
  const d = expectTag(ec[1], TAG.OCTET_STRING, 'ECPrivateKey privateKey').value;
  if (d.length !== P384_SIZE) throw new DerError(`ECPrivateKey: private key is ${d.length} bytes, expected ${P384_SIZE}`);
  const pubNode = ec.slice(2).find((n) => n.tag === contextTag(1, true));
  if (!pubNode) return P384Key.fromPrivate(d.slice());
  const bits = expectTag(derChildren(pubNode)[0], TAG.BIT_STRING, 'ECPrivateKey publicKey').value;
  if (bits[0] !== 0) throw new DerError('ECPrivateKey publicKey: unused bits');
  const key = new P384Key(d.slice(), bits.slice(1));
  return key;
}

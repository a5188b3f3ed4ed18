/**
 * P-384 private keys as PKCS#8 (RFC 5208) wrapping an RFC 5915 ECPrivateKey, the form OpenSSL,
 * WebCrypto and Node write (`-----BEGIN PRIVATE KEY-----`).
 * @module
 */
import { DerError, contextTag } from '../x509/der.js';
import { der, derBitString, derOctetString, derOid, derSequence, derSmallInt } from '../x509/der-write.js';
import { OID } from '../x509/oids.js';
import { readEcPrivateKey, readPkcs8 } from '../x509/private-key.js';
import { P384Key, P384_SIZE } from './p384.js';

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
  const info = readPkcs8(bytes);
  const curve = info.curve ?? '';
  if (info.algorithm !== OID.ecPublicKey || curve !== OID.secp384r1) {
    throw new DerError(`PKCS#8 key: expected an EC P-384 key (${OID.ecPublicKey} / ${OID.secp384r1}), found ${info.algorithm} ${curve}`);
  }
  const ec = readEcPrivateKey(info.privateKey);
  if (ec.secret.length !== P384_SIZE) throw new DerError(`ECPrivateKey: private key is ${ec.secret.length} bytes, expected ${P384_SIZE}`);
  if (!ec.publicKey) return P384Key.fromPrivate(ec.secret.slice());
  return new P384Key(ec.secret.slice(), ec.publicKey.slice());
}

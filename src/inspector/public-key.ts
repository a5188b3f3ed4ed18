/**
 * Describing the `public_key` field of a document for people: enclave applications usually put
 * a DER SubjectPublicKeyInfo there (KMS requires an RSA one), so an SPKI is decoded to its
 * algorithm and size; anything else is reported as opaque bytes.
 * @module
 */
import { DerError, TAG, bitStringBytes, derChildren, expectTag, oidText, readDerExact } from '../x509/der.js';
import { CURVE_OIDS } from '../x509/oids.js';

export type PublicKeyDescription =
  | { readonly kind: 'rsa'; readonly bits: number; readonly exponent: string; readonly text: string }
  | { readonly kind: 'ec'; readonly curve: string; readonly text: string }
  | { readonly kind: 'other-spki'; readonly algorithm: string; readonly text: string }
  | { readonly kind: 'opaque'; readonly text: string };

const NAMED: Record<string, string> = {
  '1.3.101.110': 'X25519',
  '1.3.101.111': 'X448',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
};
const RSA = '1.2.840.113549.1.1.1';
const EC = '1.2.840.10045.2.1';

function bitLength(magnitude: Uint8Array): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]!));
}

function integerText(bytes: Uint8Array): string {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v.toString();
}

/** What `bytes` are as a public key. Never throws. */
export function describePublicKey(bytes: Uint8Array): PublicKeyDescription {
  try {
    const spki = expectTag(readDerExact(bytes, 'SubjectPublicKeyInfo'), TAG.SEQUENCE, 'SubjectPublicKeyInfo');
    const [alg, key, extra] = derChildren(spki);
    if (extra) throw new DerError('SubjectPublicKeyInfo has extra elements');
    const [oidNode, params] = derChildren(expectTag(alg, TAG.SEQUENCE, 'algorithm'));
    const oid = oidText(expectTag(oidNode, TAG.OID, 'algorithm OID').value);
    const bits = bitStringBytes(key, 'subjectPublicKey');
    if (oid === RSA) {
      const [n, e] = derChildren(expectTag(readDerExact(bits, 'RSAPublicKey'), TAG.SEQUENCE, 'RSAPublicKey'));
      const modulus = expectTag(n, TAG.INTEGER, 'modulus').value;
      const exponent = integerText(expectTag(e, TAG.INTEGER, 'exponent').value);
      const size = bitLength(modulus);
      return { kind: 'rsa', bits: size, exponent, text: `RSA ${size}-bit SubjectPublicKeyInfo (e = ${exponent})` };
    }
    if (oid === EC) {
      const curveOid = params && params.tag === TAG.OID ? oidText(params.value) : '?';
      const curve = CURVE_OIDS[curveOid] ?? curveOid;
      return { kind: 'ec', curve, text: `EC ${curve} SubjectPublicKeyInfo` };
    }
    const name = NAMED[oid] ?? oid;
    return { kind: 'other-spki', algorithm: name, text: `${name} SubjectPublicKeyInfo` };
  } catch {
    return { kind: 'opaque', text: `${bytes.length} bytes, not a DER SubjectPublicKeyInfo` };
  }
}

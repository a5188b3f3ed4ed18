/**
 * The recipient public key KMS accepts in an attestation document: the DER
 * SubjectPublicKeyInfo of an RSA key (rsaEncryption), since the only key-encryption algorithm
 * is RSAES-OAEP. Anything else is named precisely in the error.
 * @module
 */
import { DerError, TAG, bitStringBytes, derChildren, expectTag, oidText, readDerExact, unsignedValue } from '../x509/der.js';

export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';

const KNOWN_KEY_TYPES: Record<string, string> = {
  '1.2.840.10045.2.1': 'an EC key (id-ecPublicKey)',
  '1.3.101.110': 'an X25519 key',
  '1.3.101.112': 'an Ed25519 key',
  '1.2.840.113549.1.1.10': 'an RSASSA-PSS-only key',
};

/** RSA modulus sizes accepted (bits). AWS documents RSA-2048; 3072 and 4096 are accepted too. */
export const RSA_RECIPIENT_BITS: readonly number[] = [2048, 3072, 4096];

export interface RsaRecipientKey {
  /** The exact SubjectPublicKeyInfo bytes (what the recipient identifier hashes). */
  readonly spki: Uint8Array;
  readonly modulusBits: number;
}

/** Checks that `spki` is an RSA SubjectPublicKeyInfo; throws an Error whose message says what it is instead. */
export function parseRsaSpki(spki: Uint8Array): RsaRecipientKey {
  let algorithm: string;
  let key: Uint8Array;
  try {
    const top = derChildren(expectTag(readDerExact(spki, 'SubjectPublicKeyInfo'), TAG.SEQUENCE, 'SubjectPublicKeyInfo'));
    if (top.length !== 2) throw new DerError('SubjectPublicKeyInfo must have 2 elements');
    const alg = derChildren(expectTag(top[0], TAG.SEQUENCE, 'algorithm'));
    algorithm = oidText(expectTag(alg[0], TAG.OID, 'algorithm OID').value);
    key = bitStringBytes(top[1], 'subjectPublicKey');
  } catch (e) {
    throw new Error(`public_key is not a DER SubjectPublicKeyInfo (${(e as Error).message})`);
  }
  if (algorithm !== OID_RSA_ENCRYPTION) {
    const what = KNOWN_KEY_TYPES[algorithm] ?? `a key of algorithm ${algorithm}`;
    throw new Error(`public_key is ${what}; KMS needs an RSA key (rsaEncryption ${OID_RSA_ENCRYPTION}) for RSAES_OAEP_SHA_256`);
  }
  let modulusBits: number;
  try {
    const parts = derChildren(expectTag(readDerExact(key, 'RSAPublicKey'), TAG.SEQUENCE, 'RSAPublicKey'));
    const n = unsignedValue(expectTag(parts[0], TAG.INTEGER, 'modulus'), 'modulus');
    unsignedValue(expectTag(parts[1], TAG.INTEGER, 'publicExponent'), 'publicExponent');
    modulusBits = n.length * 8 - Math.clz32(n[0]!) + 24;
  } catch (e) {
    throw new Error(`public_key is not a valid RSA public key (${(e as Error).message})`);
  }
  if (!RSA_RECIPIENT_BITS.includes(modulusBits)) {
    throw new Error(`public_key is an RSA-${modulusBits} key; accepted sizes are ${RSA_RECIPIENT_BITS.join(', ')} bits (AWS documents RSA-2048)`);
  }
  return { spki, modulusBits };
}

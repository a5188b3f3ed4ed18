/**
 * ECDSA P-384 (and the chain schedule's HMAC-SHA-384) through node:crypto: synchronous OpenSSL,
 * the signing backend the CLI and `nodeAttester` use for unseeded devices, and the verifier of
 * `nsm-emulator verify`. Signatures are randomized; keys are plain bytes, each imported into a
 * KeyObject at most once.
 * @module
 */
import { type KeyObject, createECDH, createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { type P384Backend, P384Key } from '../attestation/p384.js';
import { nodeDeviceSha384 } from './device-hash.js';

/** ECDSA P-384 through node:crypto (synchronous OpenSSL; randomized signatures). */
export function nodeCryptoBackend(): P384Backend {
  const handles = new WeakMap<P384Key, KeyObject>();
  const handle = (key: P384Key): KeyObject => {
    let h = handles.get(key);
    if (!h) {
      // SEC1 DER with the public key included: OpenSSL takes both as given (a JWK import also
      // checks the pair, two scalar multiplications; PKCS#8 goes through slower decoders).
      h = createPrivateKey({ key: Buffer.concat([SEC1_HEAD, key.privateKey, SEC1_MIDDLE, key.publicKey]), format: 'der', type: 'sec1' });
      handles.set(key, h);
    }
    return h;
  };
  return {
    name: 'node:crypto',
    deterministic: false,
    async generate() {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      const jwk = privateKey.export({ format: 'jwk' });
      const pub = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      const key = new P384Key(new Uint8Array(Buffer.from(jwk.d!, 'base64url')), new Uint8Array(pub));
      handles.set(key, privateKey);
      return key;
    },
    async sign(key, message) {
      return new Uint8Array(sign('sha384', message, { key: handle(key), dsaEncoding: 'ieee-p1363' }));
    },
    async publicKeyOf(privateKey) {
      const ecdh = createECDH('secp384r1');
      ecdh.setPrivateKey(privateKey);
      return new Uint8Array(ecdh.getPublicKey());
    },
    hashes: {
      sha1: (data) => new Uint8Array(createHash('sha1').update(data).digest()),
      sha384: nodeDeviceSha384,
    },
    hmacSha384(key, message) {
      return new Uint8Array(createHmac('sha384', key).update(message).digest());
    },
    async verify(publicKey, message, signature) {
      try {
        const key = createPublicKey({ key: Buffer.concat([P384_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
        return verify('sha384', message, { key, dsaEncoding: 'ieee-p1363' }, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * A P-384 ECPrivateKey (SEC1, RFC 5915) is SEQUENCE { version 1, privateKey OCTET STRING (48),
 * [0] secp384r1, [1] BIT STRING (the 97-byte point) }: these are the bytes before the scalar and
 * between the scalar and the point.
 */
const SEC1_HEAD = Buffer.from('3081a40201010430', 'hex');
const SEC1_MIDDLE = Buffer.from('a00706052b81040022a164036200', 'hex');

/** SubjectPublicKeyInfo header for an uncompressed P-384 point. */
const P384_SPKI_PREFIX = Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex');

/**
 * ECDSA P-384 (and the chain schedule's HMAC-SHA-384) through node:crypto: synchronous OpenSSL,
 * the signing backend the CLI and `nodeAttester` use for unseeded devices, and the verifier of
 * `nsm-emulator verify`. Signatures are randomized; keys are plain bytes, each imported into a
 * KeyObject at most once.
 * @module
 */
import { type KeyObject, createECDH, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { type P384Backend, P384Key } from '../attestation/p384.js';

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** ECDSA P-384 through node:crypto (synchronous OpenSSL; randomized signatures). */
export function nodeCryptoBackend(): P384Backend {
  const handles = new WeakMap<P384Key, KeyObject>();
  const handle = (key: P384Key): KeyObject => {
    let h = handles.get(key);
    if (!h) {
      const jwk = { kty: 'EC', crv: 'P-384', d: b64u(key.privateKey), x: b64u(key.publicKey.subarray(1, 49)), y: b64u(key.publicKey.subarray(49)) };
      h = createPrivateKey({ key: jwk, format: 'jwk' });
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

/** SubjectPublicKeyInfo header for an uncompressed P-384 point. */
const P384_SPKI_PREFIX = Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex');

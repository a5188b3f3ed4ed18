/**
 * ECDSA P-384 with SHA-384: the only algorithm in an attestation document and its chain.
 *
 * Two interchangeable backends: WebCrypto (native and fast; signatures are randomized) and
 * @noble/curves (pure JS, runs anywhere; signatures are deterministic per RFC 6979, which makes
 * seeded devices reproducible). Keys are plain bytes, so either backend can use any key; a key
 * remembers the WebCrypto handle made for it so it is imported at most once.
 * @module
 */
import { type RandomSource, systemRandom } from '../device/random.js';
import { DerError, TAG, expectTag, readDerExact, derChildren, unsignedValue } from '../x509/der.js';
import { der, derUnsigned } from '../x509/der-write.js';
import { base64Decode } from '../x509/pem.js';
import { loadNistCurves, nistCurves } from '../x509/nist-curves.js';
import type { CertificateHashes } from './chain-profile.js';

/** Bytes of a scalar or coordinate. */
export const P384_SIZE = 48;

/** A P-384 key pair as bytes. */
export class P384Key {
  private web: Promise<CryptoKey> | null;

  /**
   * @param privateKey the 48-byte private scalar
   * @param publicKey the 97-byte uncompressed point (04 || X || Y)
   * @param webKey an existing WebCrypto signing handle for this key, if there is one
   */
  constructor(
    readonly privateKey: Uint8Array,
    readonly publicKey: Uint8Array,
    webKey?: CryptoKey,
  ) {
    if (privateKey.length !== P384_SIZE) throw new RangeError(`a P-384 private key is ${P384_SIZE} bytes, got ${privateKey.length}`);
    if (publicKey.length !== 97 || publicKey[0] !== 4) throw new RangeError('a P-384 public key is 97 bytes starting with 04');
    this.web = webKey ? Promise.resolve(webKey) : null;
  }

  /**
   * Derives the public key (pure JS). Needs @noble/curves loaded: use {@link P384Key.derive},
   * or call this after `loadNistCurves()` has resolved.
   */
  static fromPrivate(privateKey: Uint8Array): P384Key {
    return new P384Key(privateKey, nistCurves().p384.getPublicKey(privateKey, false));
  }

  /**
   * Derives the public key: through `backend` when it can (native), else in pure JS, loading
   * @noble/curves first if needed. Either way the key is the same.
   */
  static async derive(privateKey: Uint8Array, backend?: P384Backend): Promise<P384Key> {
    if (backend?.publicKeyOf) return new P384Key(privateKey, await backend.publicKeyOf(privateKey));
    await loadNistCurves();
    return P384Key.fromPrivate(privateKey);
  }

  /** The WebCrypto signing handle (imported on first use, then kept). */
  webCryptoKey(subtle: SubtleCrypto): Promise<CryptoKey> {
    this.web ??= subtle.importKey('jwk', this.jwk(), { name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign']);
    return this.web;
  }

  private jwk(): JsonWebKey {
    const b64u = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    return {
      kty: 'EC',
      crv: 'P-384',
      d: b64u(this.privateKey),
      x: b64u(this.publicKey.subarray(1, 49)),
      y: b64u(this.publicKey.subarray(49)),
    };
  }
}

/** Signs and makes keys; see {@link webCryptoBackend} and {@link nobleBackend}. */
export interface P384Backend {
  /** `webcrypto`, `noble`, or another backend's name (Node's is in nsm-emulator/node). */
  readonly name: string;
  /** True when a signature depends only on key and message (RFC 6979). */
  readonly deterministic: boolean;
  /** A fresh key pair (the noble backend draws it from `random`). */
  generate(random: RandomSource): Promise<P384Key>;
  /** ECDSA over SHA-384(message): 96 bytes r || s. */
  sign(key: P384Key, message: Uint8Array): Promise<Uint8Array>;
  /** Checks a 96-byte r || s signature. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  /**
   * The 97-byte uncompressed public point of a private scalar, derived natively; without it
   * {@link P384Key.derive} loads @noble/curves to derive it.
   */
  publicKeyOf?(privateKey: Uint8Array): Promise<Uint8Array>;
  /**
   * HMAC-SHA-384, computed natively: the same bytes as @noble/hashes' HMAC, which the chain
   * schedule (chain-schedule.ts) uses to derive the intermediates when a backend has none.
   */
  hmacSha384?(key: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * SHA-1 and SHA-384 computed natively, for the certificate fields that hash a public key
   * (chain-profile.ts); without them @noble/hashes computes the same bytes.
   */
  readonly hashes?: CertificateHashes;
}

// The hash as a dictionary: Node normalizes it measurably faster than the string form.
const ECDSA_SHA384 = { name: 'ECDSA', hash: { name: 'SHA-384' } } as const;
/** WebCrypto's typings want ArrayBuffer-backed views; ours always are. */
const view = (b: Uint8Array) => b as Uint8Array<ArrayBuffer>;
const P384_PARAMS = { name: 'ECDSA', namedCurve: 'P-384' } as const;

/** The platform's WebCrypto, or null where there is none. */
export function platformSubtle(): SubtleCrypto | null {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c?.subtle ?? null;
}

/** Native signing through WebCrypto (randomized ECDSA). */
export function webCryptoBackend(subtle: SubtleCrypto): P384Backend {
  return {
    name: 'webcrypto',
    deterministic: false,
    async generate(): Promise<P384Key> {
      const pair = await subtle.generateKey(P384_PARAMS, true, ['sign', 'verify']);
      const jwk = await subtle.exportKey('jwk', pair.privateKey);
      const pub = new Uint8Array(97);
      pub[0] = 4;
      pub.set(base64Decode(jwk.x!), 1);
      pub.set(base64Decode(jwk.y!), 49);
      return new P384Key(base64Decode(jwk.d!), pub, pair.privateKey);
    },
    async sign(key, message) {
      const handle = await key.webCryptoKey(subtle);
      return new Uint8Array(await subtle.sign(ECDSA_SHA384, handle, view(message)));
    },
    async verify(publicKey, message, signature) {
      if (signature.length !== 2 * P384_SIZE) return false;
      let handle: CryptoKey;
      try {
        handle = await subtle.importKey('raw', view(publicKey), P384_PARAMS, false, ['verify']);
      } catch {
        return false;
      }
      return subtle.verify(ECDSA_SHA384, handle, view(signature), view(message));
    },
  };
}

/** Pure-JS signing with @noble/curves: deterministic (RFC 6979), keys drawn from the random source. */
export const nobleBackend: P384Backend = {
  name: 'noble',
  deterministic: true,
  async generate(random) {
    const { p384 } = await loadNistCurves();
    return P384Key.fromPrivate(p384.utils.randomSecretKey(random.bytes(p384.lengths.seed!)));
  },
  async sign(key, message) {
    const { p384 } = await loadNistCurves();
    return p384.sign(message, key.privateKey, { lowS: false });
  },
  async verify(publicKey, message, signature) {
    const { p384 } = await loadNistCurves();
    try {
      return p384.verify(signature, message, publicKey, { lowS: false });
    } catch {
      return false;
    }
  },
};

/**
 * Which backend to use. `auto`: WebCrypto when the platform has it and randomness comes from the
 * system; noble (reproducible) when a seeded random source is given or WebCrypto is missing.
 */
export type P384BackendChoice = 'auto' | 'webcrypto' | 'noble' | P384Backend;

export function selectBackend(choice: P384BackendChoice = 'auto', random: RandomSource = systemRandom): P384Backend {
  if (typeof choice === 'object') return choice;
  if (choice === 'noble' || (choice === 'auto' && random !== systemRandom)) return nobleBackend;
  const subtle = platformSubtle();
  if (subtle) return webCryptoBackend(subtle);
  if (choice === 'webcrypto') throw new Error('WebCrypto (crypto.subtle) is not available on this platform');
  return nobleBackend;
}

// ---- signature encodings -----------------------------------------------------------------------

/** r || s (96 bytes) to the DER `Ecdsa-Sig-Value` X.509 uses. */
export function signatureToDer(rs: Uint8Array): Uint8Array {
  return der(TAG.SEQUENCE, derUnsigned(rs.subarray(0, P384_SIZE)), derUnsigned(rs.subarray(P384_SIZE)));
}

/** DER `Ecdsa-Sig-Value` to r || s; throws {@link DerError} when malformed or out of range. */
export function signatureFromDer(sig: Uint8Array): Uint8Array {
  const seq = expectTag(readDerExact(sig, 'ECDSA signature'), TAG.SEQUENCE, 'ECDSA signature');
  const parts = derChildren(seq);
  if (parts.length !== 2) throw new DerError('ECDSA signature: expected two INTEGERs');
  const out = new Uint8Array(2 * P384_SIZE);
  parts.forEach((p, i) => {
    const v = unsignedValue(expectTag(p, TAG.INTEGER, 'ECDSA signature'), 'ECDSA signature');
    if (v.length > P384_SIZE) throw new DerError('ECDSA signature: integer longer than 48 bytes');
    out.set(v, (i + 1) * P384_SIZE - v.length);
  });
  return out;
}

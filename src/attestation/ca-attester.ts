/**
 * An attester backed by a {@link TestCa}: what the device calls for every Attestation request.
 *
 * Each device gets its own chain below the CA (see {@link ChainIssuer}), its own keys and a
 * payload encoder cached for the current leaf, so a document costs one payload pass and one
 * ES384 signature. The backend follows the device's randomness: with the system source it signs
 * through WebCrypto (native); with a seeded source it uses @noble/curves, whose RFC 6979
 * signatures make documents byte-identical for the same seed, inputs and clock.
 * @module
 */
import type { AttestationInput, Attester, AttesterEnv, AttesterFactory } from '../device/attester.js';
import { ChainIssuer, cabundleOf } from './chain-issuer.js';
import type { IssuedCert } from './chain-profile.js';
import type { ChainStore } from './chain-store.js';
import { type PayloadMapForm, PayloadEncoder, encodeCoseSign1, sigStructure } from './document.js';
import { type P384Backend, type P384BackendChoice, selectBackend } from './p384.js';
import type { TestCa } from './test-ca.js';

export interface CaAttesterOptions {
  /** `indefinite` (`bf ... ff`, AWS since 2025; the default) or `definite` (`a9`, AWS before). */
  readonly payloadMap?: PayloadMapForm;
  /**
   * Signing backend; `auto` (default) is WebCrypto unless the device is seeded, then noble.
   * A backend object can be given too (Node's `nodeCryptoBackend()` signs synchronously).
   */
  readonly crypto?: P384BackendChoice;
  /**
   * Keeps the derived intermediate certificates (regional, zonal, instance) across processes, so
   * a new process need not sign them again (see chain-store.ts: entries are checked, and the
   * documents are the same with or without a store). Default: none (made in memory per process).
   */
  readonly chainStore?: ChainStore;
}

/** The attester behind one device. */
export class CaAttester implements Attester {
  private readonly issuer: ChainIssuer;
  private readonly backend: P384Backend;
  private encoderLeaf: IssuedCert | null = null;
  private encoderModuleId = '';
  private encoder: PayloadEncoder | null = null;

  constructor(
    ca: TestCa,
    private readonly env: AttesterEnv,
    private readonly options: CaAttesterOptions = {},
  ) {
    this.backend = selectBackend(options.crypto ?? 'auto', env.random);
    this.issuer = new ChainIssuer(ca, this.backend, env.random, options.chainStore);
  }

  attest(input: AttestationInput): Promise<Uint8Array> {
    const now = Math.floor(this.env.clock());
    if (!Number.isSafeInteger(now) || now < 0) return Promise.reject(new RangeError(`device clock gave ${now}, not milliseconds since 1970`));
    let leaf;
    try {
      leaf = this.issuer.leafAt(now, input.moduleId);
    } catch (e) {
      return Promise.reject(e);
    }
    return leaf instanceof Promise ? leaf.then((l) => this.sign(l, now, input)) : this.sign(leaf, now, input);
  }

  /** The leaf certificate documents are currently signed with (null before the first one). */
  get currentLeaf(): IssuedCert | null {
    return this.encoderLeaf;
  }

  private async sign(leaf: IssuedCert, now: number, input: AttestationInput): Promise<Uint8Array> {
    if (this.encoderLeaf !== leaf || this.encoderModuleId !== input.moduleId || !this.encoder) {
      this.encoder = new PayloadEncoder(input.moduleId, leaf.der, cabundleOf(leaf), this.options.payloadMap ?? 'indefinite');
      this.encoderLeaf = leaf;
      this.encoderModuleId = input.moduleId;
    }
    const payload = this.encoder.encode(now, input.pcrs, input.publicKey, input.userData, input.nonce);
    const signature = await this.backend.sign(leaf.key, sigStructure(payload));
    return encodeCoseSign1(payload, signature);
  }
}

/** An attester factory signing with `ca`; pass it as the device's `attester` option. */
export function caAttester(ca: TestCa, options: CaAttesterOptions = {}): AttesterFactory {
  return (env) => new CaAttester(ca, env, options);
}

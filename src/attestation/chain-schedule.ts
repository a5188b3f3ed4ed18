/**
 * The intermediate certificates below a test root (regional, zonal, instance), derived from
 * the root's private key and the time, so that they never go stale and look like AWS's.
 *
 * AWS rotates its intermediates well before they expire: across real documents the regional
 * certificate in use started 0.6-5 days before the document, the zonal 3-20 hours, the
 * instance certificate 6 minutes to 10 hours (and the leaf, issued when the enclave first
 * asks, 3 seconds to 36 minutes). Here each level has an issuance schedule: slot k starts at
 * `phase + k * period + jitter(k)`, with phase and jitter drawn from the root key (per parent
 * instance for the instance level). The certificate of a level "in use" at time x is the one of
 * the newest slot that started at least `lag` before x, and each certificate is signed by the
 * certificate of the level above in use when it was issued. For a leaf issued at t this puts
 * the instance certificate in [t - 10 h, t - 6 min), the zonal in [t - 20 h, t - 3 h) and the
 * regional in [t - 5 d, t - 14.4 h).
 *
 * Everything about a certificate (key, serial, name, dates) is a function of the root key,
 * the level, the slot number (and the instance id), as every enclave of an AWS region sees the
 * same intermediates. Seeded devices sign them with RFC 6979 (noble), so their bytes are the
 * same in every process; unseeded devices sign through their faster native backend, whose
 * signatures are randomized, so only the signature bytes differ from process to process. A certificate's validity is its real lifetime, cut to its issuer's
 * (never before its issuer's notBefore, never after its notAfter), as real CAs issue.
 * @module
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha384 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import {
  type ChainLevel,
  type IssuedCert,
  LIFETIME_SECONDS,
  RANDOM_SERIAL_BYTES,
  draftCertificate,
  finishDraft,
  instanceName,
  regionalName,
  zonalName,
} from './chain-profile.js';
import { type ChainStore, chainEntryMacInput, decodeChainEntry, encodeChainEntry, sameMac } from './chain-store.js';
import { type P384Backend, P384Key, nobleBackend } from './p384.js';
import type { TestCa } from './test-ca.js';

const HOUR = 3600;

type Level = Extract<ChainLevel, 'regional' | 'zonal' | 'instance'>;

/**
 * Per level: `lag` (a certificate is used from this long after its slot starts) and `span`
 * (the longest gap between two slots: period + jitter, jitter = span / 4), in seconds. The lag
 * of each level is counted from the issuance of the certificate below it.
 */
export const CHAIN_CADENCE: Record<Level, { readonly lag: number; readonly span: number }> = {
  /** Instance: [6 min, 10 h) before the leaf. */
  instance: { lag: 6 * 60, span: 10 * HOUR - 6 * 60 },
  /** Zonal: [2.9 h, 10 h) before the instance certificate, so [3 h, 20 h) before the leaf. */
  zonal: { lag: 2.9 * HOUR, span: 7.1 * HOUR },
  /** Regional: [11.4 h, 100 h) before the zonal, so [14.4 h, 120 h) before the leaf. */
  regional: { lag: 11.4 * HOUR, span: 88.6 * HOUR },
};

/** The label of the master secret every derivation of a CA is keyed with. */
const MASTER_LABEL = 'nsm-emulator intermediates v1';

/** How many derived certificates a CA keeps in memory. */
const CACHE_LIMIT = 256;

const utf8 = (s: string) => new TextEncoder().encode(s);

/** P-384 group order. */
const N = 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n;

function toBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

function toBigInt(b: Uint8Array): bigint {
  return BigInt('0x' + (bytesToHex(b) || '0'));
}

/** How many schedule fractions (phases, jitters) a CA keeps in memory. */
const FRACTION_LIMIT = 1024;

/** The derived intermediates of one CA (cached per CA object). */
export class ChainSchedule {
  private master: Uint8Array | null = null;
  private rootId: string | null = null;
  /** HMAC-SHA-384 keyed with the master secret, cloned for each pure-JS derivation (the key's blocks are hashed once). */
  private keyed: ReturnType<typeof hmac.create> | null = null;
  private readonly cache = new Map<string, Promise<IssuedCert>>();
  /** Phases and jitters already derived: each slot computation asks for the same few several times. */
  private readonly fractions = new Map<string, number>();

  constructor(private readonly ca: TestCa) {}

  /** HMAC-SHA-384 through the backend's native HMAC when it has one, else @noble/hashes. */
  private mac(key: Uint8Array, message: Uint8Array, backend?: P384Backend): Uint8Array {
    return backend?.hmacSha384 ? backend.hmacSha384(key, message) : hmac(sha384, key, message);
  }

  /**
   * `n` bytes for `label`: HMAC-SHA-384(master, label#0) || HMAC(master, label#1) ..., where
   * master = HMAC-SHA-384(root private key, "nsm-emulator intermediates v1"). Through the
   * backend's native HMAC when it has one, else @noble/hashes: the bytes are the same.
   */
  private derive(label: string, n: number, backend?: P384Backend): Uint8Array {
    const master = this.masterKey(backend);
    const out: Uint8Array[] = [];
    for (let i = 0; out.length * 48 < n; i++) {
      const message = utf8(`${label}#${i}`);
      if (backend?.hmacSha384) {
        out.push(backend.hmacSha384(master, message));
      } else {
        this.keyed ??= hmac.create(sha384, master);
        out.push(this.keyed.clone().update(message).digest());
      }
    }
    return concatBytes(...out).slice(0, n);
  }

  private fraction(label: string, backend?: P384Backend): number {
    let f = this.fractions.get(label);
    if (f === undefined) {
      const b = this.derive(label, 6, backend);
      f = (b[0]! * 2 ** 40 + b[1]! * 2 ** 32 + ((b[2]! << 24) >>> 0) + (b[3]! << 16) + (b[4]! << 8) + b[5]!) / 2 ** 48;
      if (this.fractions.size >= FRACTION_LIMIT) this.fractions.delete(this.fractions.keys().next().value!);
      this.fractions.set(label, f);
    }
    return f;
  }

  /** Start (seconds) of slot k of a schedule (`backend`: only whose HMAC derives it). */
  slotStart(schedule: string, span: number, k: number, backend?: P384Backend): number {
    const period = Math.floor((span * 3) / 4);
    const jitter = span - period;
    const phase = Math.floor(this.fraction(`${schedule}/phase`, backend) * period);
    return phase + k * period + Math.floor(this.fraction(`${schedule}/${k}/jitter`, backend) * jitter);
  }

  /** The newest slot of a schedule that started at or before `x` (seconds). */
  latestSlot(schedule: string, span: number, x: number, backend?: P384Backend): number {
    const period = Math.floor((span * 3) / 4);
    const phase = Math.floor(this.fraction(`${schedule}/phase`, backend) * period);
    const k0 = Math.floor((x - phase) / period);
    // Jitter is below one period, so slot k0 - 1 always started before x.
    return this.slotStart(schedule, span, k0, backend) <= x ? k0 : k0 - 1;
  }

  /**
   * The regional certificate in use at `x` (seconds), signed through `backend`; with a `store`,
   * taken from it when it holds a valid entry, else made and put there (chain-store.ts).
   */
  regionalAt(x: number, backend: P384Backend, store?: ChainStore): Promise<IssuedCert> {
    const { lag, span } = CHAIN_CADENCE.regional;
    const k = this.latestSlot('regional', span, x - lag, backend);
    return this.issue('regional', `regional/${k}`, this.slotStart('regional', span, k, backend), backend, store, async () => this.ca.root);
  }

  /** The zonal certificate in use at `x` (seconds). */
  zonalAt(x: number, backend: P384Backend, store?: ChainStore): Promise<IssuedCert> {
    const { lag, span } = CHAIN_CADENCE.zonal;
    const k = this.latestSlot('zonal', span, x - lag, backend);
    const start = this.slotStart('zonal', span, k, backend);
    return this.issue('zonal', `zonal/${k}`, start, backend, store, () => this.regionalAt(start, backend, store));
  }

  /** The certificate of parent instance `instanceId` in use at `x` (seconds). */
  instanceAt(instanceId: string, x: number, backend: P384Backend, store?: ChainStore): Promise<IssuedCert> {
    const { lag, span } = CHAIN_CADENCE.instance;
    const schedule = `instance/${instanceId}`;
    const k = this.latestSlot(schedule, span, x - lag, backend);
    const start = this.slotStart(schedule, span, k, backend);
    return this.issue('instance', `${schedule}/${k}`, start, backend, store, () => this.zonalAt(start, backend, store), instanceId);
  }

  /** `<signer kind>/<root id>/<region>/`: what store keys of this CA start with. */
  private storePrefix(backend: P384Backend): string {
    // The root id binds entries to this root certificate (not only its key).
    this.rootId ??= bytesToHex(this.mac(this.masterKey(backend), concatBytes(utf8('store/root\0'), this.ca.root.der), backend).subarray(0, 16));
    return `${backend.deterministic ? 'rfc6979' : 'random'}/${this.rootId}/${this.ca.region}/`;
  }

  private masterKey(backend?: P384Backend): Uint8Array {
    this.master ??= this.mac(this.ca.root.key.privateKey, utf8(MASTER_LABEL), backend);
    return this.master;
  }

  private issue(
    level: Level,
    label: string,
    start: number,
    backend: P384Backend,
    store: ChainStore | undefined,
    issuerOf: () => Promise<IssuedCert>,
    instanceId = '',
  ): Promise<IssuedCert> {
    // Deterministic and randomized signers keep separate certificates, so a seeded device never
    // picks up bytes an unseeded one signed.
    const cacheKey = `${backend.deterministic ? 'rfc6979' : 'random'}:${label}`;
    let p = this.cache.get(cacheKey);
    if (p) return p;
    p = (async () => {
      const issuer = await issuerOf();
      const region = this.ca.region;
      const privateKey = toBytes((toBigInt(this.derive(`${label}/key`, 64, backend)) % (N - 1n)) + 1n, 48);
      const serial = this.derive(`${label}/serial`, RANDOM_SERIAL_BYTES[level], backend);
      const id = bytesToHex(this.derive(`${label}/name`, 8, backend));
      const name = level === 'regional' ? regionalName(id, region) : level === 'zonal' ? zonalName(id, region) : instanceName(instanceId, region);
      const notBefore = Math.max(start, issuer.notBefore);
      const notAfter = Math.min(start + LIFETIME_SECONDS[level], issuer.notAfter);
      const request = (key: P384Key) => ({ level, name, key, issuer, serial, notBefore, notAfter, region, hashes: backend.hashes });
      // Only the regional and zonal certificates go to the store: every device of the CA shares
      // them, while an instance certificate belongs to one parent instance (usually a random id).
      if (!store || level === 'instance') {
        const draft = draftCertificate(request(await P384Key.derive(privateKey, backend)));
        return finishDraft(draft, await backend.sign(draft.signingKey, draft.tbs), issuer);
      }
      const storeKey = this.storePrefix(backend) + label;
      const macKey = this.derive('store/mac', 48, backend);
      const entry = decodeChainEntry(await Promise.resolve(store.get(storeKey)).catch(() => null));
      if (entry) {
        // The TBSCertificate is rebuilt here, never read; the MAC says the stored public key and
        // signature were made for exactly it, from this root.
        const draft = draftCertificate(request(new P384Key(privateKey, entry.publicKey.slice())));
        const signature = entry.signature.slice();
        if (sameMac(entry.mac, this.mac(macKey, chainEntryMacInput(storeKey, draft.tbs, signature), backend))) return finishDraft(draft, signature, issuer);
      }
      const key = await P384Key.derive(privateKey, backend);
      const draft = draftCertificate(request(key));
      const signature = await backend.sign(draft.signingKey, draft.tbs);
      if (signature.length === 96) {
        const mac = this.mac(macKey, chainEntryMacInput(storeKey, draft.tbs, signature), backend);
        await Promise.resolve()
          .then(() => store.put(storeKey, encodeChainEntry({ mac, publicKey: key.publicKey, signature })))
          .catch(() => undefined);
      }
      return finishDraft(draft, signature, issuer);
    })();
    this.cache.set(cacheKey, p);
    p.catch(() => this.cache.delete(cacheKey));
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
    return p;
  }
}

const schedules = new WeakMap<TestCa, ChainSchedule>();

/** The (shared, cached) schedule of a CA's intermediates. */
export function chainSchedule(ca: TestCa): ChainSchedule {
  let s = schedules.get(ca);
  if (!s) {
    s = new ChainSchedule(ca);
    schedules.set(ca, s);
  }
  return s;
}

/**
 * The regional, zonal and instance certificates that sign a leaf issued at `timeMs` for
 * parent instance `instanceId`, as a device of this CA would use them.
 */
export async function intermediatesAt(
  ca: TestCa,
  timeMs: number,
  instanceId = 'i-0123456789abcdef0',
): Promise<{ regional: IssuedCert; zonal: IssuedCert; instance: IssuedCert }> {
  const instance = await chainSchedule(ca).instanceAt(instanceId, Math.floor(timeMs / 1000), nobleBackend);
  const zonal = instance.issuer!;
  return { regional: zonal.issuer!, zonal, instance };
}

/**
 * The leaf certificate of one device, issued on first use and re-issued as the device clock
 * moves past it, as AWS does.
 *
 * The leaf is issued when a document is first asked for (notBefore 3 s before, valid 3 hours,
 * cut to its issuer's validity) and reused while the clock is inside it and the module_id is
 * the same. It is signed by the instance certificate in use at its issuance for the module_id's
 * parent instance; that one, the zonal and the regional above it come from the CA's schedule
 * (chain-schedule.ts), derived from the root and shared by every device of the CA. The leaf's
 * key is drawn from the device's attestation randomness (reproducible when seeded).
 * @module
 */
import type { RandomSource } from '../device/random.js';
import {
  type IssuedCert,
  LEAF_BACKDATE_SECONDS,
  LIFETIME_SECONDS,
  issueCertificate,
  leafName,
  leafSerial,
  splitModuleId,
} from './chain-profile.js';
import { chainSchedule } from './chain-schedule.js';
import type { ChainStore } from './chain-store.js';
import type { P384Backend } from './p384.js';
import type { TestCa } from './test-ca.js';

/** Raised when the CA cannot issue at the requested time (its root is not valid then). */
export class ChainIssueError extends Error {
  override readonly name = 'ChainIssueError';
}

const iso = (s: number) => new Date(s * 1000).toISOString();

export class ChainIssuer {
  private leaf: IssuedCert | null = null;
  private leafModuleId = '';
  private inflight: Promise<IssuedCert> | null = null;

  constructor(
    private readonly ca: TestCa,
    private readonly backend: P384Backend,
    private readonly random: RandomSource,
    /** Where the intermediates are kept across processes (chain-store.ts), if anywhere. */
    private readonly store?: ChainStore,
  ) {}

  /**
   * The leaf to sign a document made at `nowMs` for `moduleId` (its `issuer` links lead to the
   * root). Synchronous when the current leaf is still valid.
   */
  leafAt(nowMs: number, moduleId: string): IssuedCert | Promise<IssuedCert> {
    const leaf = this.leaf;
    if (leaf && this.leafModuleId === moduleId && leaf.notBefore * 1000 <= nowMs && nowMs < leaf.notAfter * 1000) return leaf;
    if (this.inflight) return this.inflight.then(() => this.leafAt(nowMs, moduleId));
    const p = this.reissue(nowMs, moduleId);
    this.inflight = p;
    const clear = () => {
      if (this.inflight === p) this.inflight = null;
    };
    p.then(clear, clear);
    return p;
  }

  private async reissue(nowMs: number, moduleId: string): Promise<IssuedCert> {
    const now = Math.floor(nowMs / 1000);
    const root = this.ca.root;
    // A certificate counts as expired from its notAfter second on, as OpenSSL judges it.
    if (nowMs < root.notBefore * 1000 || nowMs >= root.notAfter * 1000) {
      throw new ChainIssueError(
        `the device clock (${new Date(nowMs).toISOString()}) is outside the CA root's validity (${iso(root.notBefore)} to ${iso(root.notAfter)}): ` +
          'no certificate can be issued then; set the clock inside it, or use a CA whose root covers it',
      );
    }
    const { instanceId, enclaveId } = splitModuleId(moduleId);
    const region = this.ca.region;
    const [instance, key] = await Promise.all([chainSchedule(this.ca).instanceAt(instanceId, now, this.backend, this.store), this.backend.generate(this.random)]);
    const leaf = await issueCertificate(
      {
        level: 'leaf',
        name: leafName(moduleId, region),
        key,
        issuer: instance,
        serial: leafSerial(enclaveId, now),
        notBefore: Math.max(now - LEAF_BACKDATE_SECONDS, instance.notBefore),
        notAfter: Math.min(now + LIFETIME_SECONDS.leaf - LEAF_BACKDATE_SECONDS, instance.notAfter),
        region,
        hashes: this.backend.hashes,
      },
      this.backend,
    );
    this.leaf = leaf;
    this.leafModuleId = moduleId;
    return leaf;
  }
}

/** The cabundle for a leaf: every certificate above it, root first. */
export function cabundleOf(leaf: IssuedCert): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let c = leaf.issuer; c; c = c.issuer) out.unshift(c.der);
  return out;
}

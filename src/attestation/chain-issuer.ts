/**
 * The certificates below the CA for one device: issued on first use, reused while valid, and
 * re-issued as the device clock moves past them, as AWS does.
 *
 * The leaf is reused for every document while the clock is inside its validity. When it is
 * not, a new leaf is issued (notBefore 3 s before issuance, 3 h of life), and each certificate
 * above it that does not span the new one's whole validity is replaced too: instance (1 day),
 * zonal, regional. The CA's own regional and zonal certificates are used while they qualify,
 * then ones issued by other unseeded devices of the same CA (`TestCa.shared`).
 * All new keys and certificates of one step are made concurrently; with a seeded random source
 * and the noble backend every byte is reproducible.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { RandomSource } from '../device/random.js';
import {
  type CertificateDraft,
  type ChainLevel,
  type IssuedCert,
  type IssuerInfo,
  LEAF_BACKDATE_SECONDS,
  LIFETIME_SECONDS,
  RANDOM_SERIAL_BYTES,
  covers,
  draftCertificate,
  instanceName,
  leafName,
  leafSerial,
  regionalName,
  finishDraft,
  splitModuleId,
  zonalName,
} from './chain-profile.js';
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
  private instance: IssuedCert | null = null;
  private instanceId = '';
  private zonal: IssuedCert | null = null;
  private regional: IssuedCert | null = null;
  private inflight: Promise<IssuedCert> | null = null;

  constructor(
    private readonly ca: TestCa,
    private readonly backend: P384Backend,
    private readonly random: RandomSource,
  ) {}

  /**
   * The leaf to sign a document made at `nowMs` for `moduleId` (its `issuer` links lead to the
   * root). Synchronous when the current leaf is still valid.
   */
  leafAt(nowMs: number, moduleId: string): IssuedCert | Promise<IssuedCert> {
    const leaf = this.leaf;
    if (leaf && this.leafModuleId === moduleId && leaf.notBefore * 1000 <= nowMs && nowMs <= leaf.notAfter * 1000) return leaf;
    if (this.inflight) return this.inflight.then(() => this.leafAt(nowMs, moduleId));
    const p = this.reissue(nowMs, moduleId);
    this.inflight = p;
    const clear = () => {
      if (this.inflight === p) this.inflight = null;
    };
    p.then(clear, clear);
    return p;
  }

  private pick(candidates: Array<IssuedCert | null>, from: number, to: number): IssuedCert | null {
    for (const c of candidates) if (c && covers(c, from, to)) return c;
    return null;
  }

  private async reissue(nowMs: number, moduleId: string): Promise<IssuedCert> {
    const now = Math.floor(nowMs / 1000);
    const start = now - LEAF_BACKDATE_SECONDS;
    const window = (level: Exclude<ChainLevel, 'root'>): [number, number] =>
      level === 'leaf' ? [start, now + LIFETIME_SECONDS.leaf - LEAF_BACKDATE_SECONDS] : [start, start + LIFETIME_SECONDS[level]];
    const { instanceId, enclaveId } = splitModuleId(moduleId);
    const region = this.ca.region;

    // Walk up from the leaf until a certificate spans the window of the one below it.
    const todo: Array<Exclude<ChainLevel, 'root'>> = ['leaf'];
    let top: IssuedCert | null = null;
    const [lf, lt] = window('leaf');
    top = this.instanceId === instanceId ? this.pick([this.instance], lf, lt) : null;
    if (!top) {
      todo.unshift('instance');
      const [f, t] = window('instance');
      top = this.pick([this.zonal, this.ca.zonal, this.shared?.zonal ?? null], f, t);
      if (!top) {
        todo.unshift('zonal');
        const [zf, zt] = window('zonal');
        top = this.pick([this.regional, this.ca.regional, this.shared?.regional ?? null], zf, zt);
        if (!top) {
          todo.unshift('regional');
          const [rf, rt] = window('regional');
          top = this.ca.root;
          if (!covers(top, rf, rt)) {
            throw new ChainIssueError(
              `the CA root (valid ${iso(top.notBefore)} to ${iso(top.notAfter)}) does not cover a regional certificate from ${iso(rf)} to ${iso(rt)}`,
            );
          }
        }
      }
    }

    // Keys first (drawn in a fixed order), then every name and serial, then all signatures at once.
    const keys = await Promise.all(todo.map(() => this.backend.generate(this.random)));
    const drafts: CertificateDraft[] = [];
    let issuer: IssuerInfo = top;
    todo.forEach((level, i) => {
      const [notBefore, notAfter] = window(level);
      const name =
        level === 'regional'
          ? regionalName(bytesToHex(this.random.bytes(8)), region)
          : level === 'zonal'
            ? zonalName(bytesToHex(this.random.bytes(8)), region)
            : level === 'instance'
              ? instanceName(instanceId, region)
              : leafName(moduleId, region);
      const serial = level === 'leaf' ? leafSerial(enclaveId, now) : this.random.bytes(RANDOM_SERIAL_BYTES[level]);
      const draft = draftCertificate({ level, name, key: keys[i]!, issuer, serial, notBefore, notAfter, region });
      drafts.push(draft);
      issuer = draft;
    });
    const signed = await Promise.all(drafts.map((d) => this.backend.sign(d.signingKey, d.tbs)));
    let parent: IssuedCert = top;
    for (let i = 0; i < drafts.length; i++) {
      const cert = finishDraft(drafts[i]!, signed[i]!, parent);
      this.store(cert);
      parent = cert;
    }
    this.leafModuleId = moduleId;
    this.instanceId = instanceId;
    return parent;
  }

  /** The CA's shared intermediates, for unseeded (non-reproducible) issuers only. */
  private get shared() {
    return this.backend.deterministic ? undefined : this.ca.shared;
  }

  private store(cert: IssuedCert): void {
    const shared = this.shared;
    switch (cert.level) {
      case 'regional':
        this.regional = cert;
        if (shared) shared.regional = cert;
        break;
      case 'zonal':
        this.zonal = cert;
        if (shared) shared.zonal = cert;
        break;
      case 'instance':
        this.instance = cert;
        break;
      case 'leaf':
        this.leaf = cert;
        break;
    }
  }
}

/** The cabundle for a leaf: every certificate above it, root first. */
export function cabundleOf(leaf: IssuedCert): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let c = leaf.issuer; c; c = c.issuer) out.unshift(c.der);
  return out;
}

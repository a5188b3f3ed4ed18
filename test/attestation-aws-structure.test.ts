// Structural comparison with real AWS documents: for a real document we make one from the same
// inputs (module_id, timestamp, PCRs, user_data, nonce, public_key) and compare them token by
// token (CBOR major types, header bytes, key order, container lengths), then every certificate
// (DER element tags in order, string types, extensions and their criticality, key usage, path
// length, validity length, serial layout). Only keys, signatures, times, names and ids may differ.
// The walkers below are written here, independently of the library's CBOR and DER readers.
import { Decoder } from 'cbor-x';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeAttestationDocument } from '../src/attestation/index.js';
import { hex } from './helpers/hex.js';
import { realAwsDoc } from './helpers/aws-vectors.js';

const cborx = new Decoder({ mapsAsObjects: false, useRecords: false });

interface CborToken {
  /** Where in the document: e.g. `payload/cabundle/2`. */
  path: string;
  major: number;
  /** The whole initial byte (major type and additional information). */
  initial: number;
  /** Length, count or integer value; -1 for indefinite. */
  arg: number;
  /** Content of byte and text strings. */
  content?: Uint8Array;
}

/** Flattens CBOR into tokens; byte strings named in `nested` are tokenized as CBOR too. */
function cborTokens(bytes: Uint8Array, path = '', nested: (path: string) => boolean = () => false): CborToken[] {
  const out: CborToken[] = [];
  let p = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  function item(path: string): void {
    const initial = bytes[p++]!;
    const major = initial >> 5;
    const ai = initial & 31;
    let arg: number;
    if (ai < 24) arg = ai;
    else if (ai === 24) arg = bytes[p++]!;
    else if (ai === 25) (arg = view.getUint16(p)), (p += 2);
    else if (ai === 26) (arg = view.getUint32(p)), (p += 4);
    else if (ai === 27) (arg = Number(view.getBigUint64(p))), (p += 8);
    else if (ai === 31) arg = -1;
    else throw new Error(`unexpected additional information ${ai}`);
    const tok: CborToken = { path, major, initial, arg };
    out.push(tok);
    if (initial === 0xff) return;
    if (major === 2 || major === 3) {
      tok.content = bytes.subarray(p, p + arg);
      p += arg;
      if (major === 2 && nested(path)) out.push(...cborTokens(tok.content, `${path}>`, nested));
    } else if (major === 4) {
      for (let i = 0; arg === -1 ? bytes[p] !== 0xff : i < arg; i++) item(`${path}/${i}`);
      if (arg === -1) item(`${path}/end`);
    } else if (major === 5) {
      for (let i = 0; arg === -1 ? bytes[p] !== 0xff : i < arg; i++) {
        const keyAt = out.length;
        item(`${path}/key`);
        const k = out[keyAt]!;
        const name = k.content ? Buffer.from(k.content).toString() : String(k.arg);
        item(`${path}/${name}`);
      }
      if (arg === -1) item(`${path}/end`);
    } else if (major === 6) item(`${path}/tagged`);
  }
  while (p < bytes.length) item(path);
  return out;
}

/** Token fields whose values may differ: lengths and contents of certificates and the signature. */
function mayDiffer(path: string): { length: boolean; content: boolean } {
  const cert = /^doc\/2>\/(certificate|cabundle\/\d)$/.test(path);
  return {
    length: cert || path === 'doc/2', // the payload grows or shrinks with certificate names
    content: cert || path === 'doc/2' || path === 'doc/3',
  };
}

function compareDocuments(ours: Uint8Array, theirs: Uint8Array): void {
  const nested = (p: string) => p === 'doc/2';
  const a = cborTokens(ours, 'doc', nested);
  const b = cborTokens(theirs, 'doc', nested);
  expect(a.map((t) => t.path)).toEqual(b.map((t) => t.path)); // same structure and key order
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const allow = mayDiffer(x.path);
    expect({ path: x.path, major: x.major, ai: x.initial & 31 }).toEqual({ path: y.path, major: y.major, ai: y.initial & 31 });
    if (!allow.length) expect({ path: x.path, arg: x.arg }).toEqual({ path: y.path, arg: y.arg });
    if (!allow.content && x.content) expect({ path: x.path, content: hex(x.content) }).toEqual({ path: y.path, content: hex(y.content!) });
  }
}

interface DerToken {
  depth: number;
  tag: number;
  /** Value of OIDs, BOOLEANs, the version and extension values that carry no key id. */
  fixed?: string;
}

/** DER element tags in order; extension values are walked too. */
function derTokens(bytes: Uint8Array, depth = 0): DerToken[] {
  const out: DerToken[] = [];
  let p = 0;
  while (p < bytes.length) {
    const tag = bytes[p++]!;
    let len = bytes[p++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[p++]!;
    }
    const value = bytes.subarray(p, p + len);
    p += len;
    const tok: DerToken = { depth, tag };
    out.push(tok);
    if (tag === 0x06 || tag === 0x01) tok.fixed = hex(value);
    if (tag & 0x20) {
      const children = derTokens(value, depth + 1);
      // An Extension: OID 2.5.29.x, [critical], OCTET STRING holding DER.
      const kids = children.filter((c) => c.depth === depth + 1);
      if (kids[0]?.tag === 0x06 && kids[0].fixed?.startsWith('551d')) {
        const octet = locateLastOctetString(value);
        const inner = derTokens(octet, depth + 2);
        const id = kids[0].fixed;
        // basicConstraints, keyUsage: compare their exact values.
        if (id === '551d13' || id === '551d0f') inner[0]!.fixed = hex(octet);
        out.push(...children, ...inner);
        continue;
      }
      out.push(...children);
    }
  }
  return out;
}

function locateLastOctetString(seq: Uint8Array): Uint8Array {
  let p = 0;
  let last: Uint8Array = new Uint8Array();
  while (p < seq.length) {
    const tag = seq[p++]!;
    let len = seq[p++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + seq[p++]!;
    }
    if (tag === 0x04) last = seq.subarray(p, p + len);
    p += len;
  }
  return last;
}

function certsOf(doc: Uint8Array): Uint8Array[] {
  const [, , payload] = cborx.decode(doc) as [unknown, unknown, Uint8Array];
  const f = cborx.decode(payload) as Map<string, unknown>;
  return [...(f.get('cabundle') as Uint8Array[]), f.get('certificate') as Uint8Array];
}

const LEVELS = ['root', 'regional', 'zonal', 'instance', 'leaf'] as const;
const H = 3600_000;
const D = 24 * H;
/** Allowed validity lengths (ms): AWS's own vary a little, ours are fixed. */
const VALIDITY: Record<(typeof LEVELS)[number], [number, number]> = {
  root: [30 * 365 * D, 30 * 366 * D + H],
  regional: [20 * D + H - 1000, 20 * D + H],
  zonal: [5 * D + 18 * H, 5 * D + 22 * H],
  instance: [D, D],
  leaf: [3 * H + 3000, 3 * H + 3000],
};

const validityMs = (c: X509Certificate) => Date.parse(c.validTo) - Date.parse(c.validFrom);

const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

/** openssl's rendering of the extensions, with key ids and URLs blanked out. */
function extensionText(der: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-ext-'));
  writeFileSync(join(dir, 'c.der'), der);
  const text = spawnSync('openssl', ['x509', '-inform', 'der', '-in', join(dir, 'c.der'), '-noout', '-text'], { encoding: 'utf8' }).stdout;
  const ext = text.slice(text.indexOf('X509v3 extensions:'), text.indexOf('Signature Algorithm', text.indexOf('X509v3 extensions:')));
  return ext.replace(/([0-9A-F]{2}:){19}[0-9A-F]{2}/g, '<key id>').replace(/URI:\S+/g, 'URI:<url>');
}

function realDocument(n: number): Uint8Array {
  return realAwsDoc(n).doc;
}

/** Our document made from exactly the real one's inputs. */
async function twinOf(real: Uint8Array, payloadMap: 'definite' | 'indefinite'): Promise<Uint8Array> {
  const [, , payload] = cborx.decode(real) as [unknown, unknown, Uint8Array];
  const f = cborx.decode(payload) as Map<string, unknown>;
  const pcrs = f.get('pcrs') as Map<number, Uint8Array>;
  return makeAttestationDocument({
    moduleId: f.get('module_id') as string,
    timestamp: Number(f.get('timestamp')),
    pcrs: new Map([...pcrs].map(([k, v]) => [k, new Uint8Array(v)])),
    userData: f.get('user_data') as Uint8Array | null,
    nonce: f.get('nonce') as Uint8Array | null,
    publicKey: f.get('public_key') as Uint8Array | null,
    payloadMap,
    seed: 'a11ce0',
  });
}

describe.each([
  [10, 'indefinite'],
  [9, 'definite'],
] as const)('against real AWS document %i (%s payload map)', (n, form) => {
  it('matches token by token: major types, header bytes, key order, container lengths, values', async () => {
    const real = realDocument(n);
    const ours = await twinOf(real, form);
    compareDocuments(ours, real);
  });

  it('has the same certificate structure, level by level', async () => {
    const real = realDocument(n);
    const ours = await twinOf(real, form);
    const [a, b] = [certsOf(ours), certsOf(real)];
    expect(a).toHaveLength(5);
    expect(b).toHaveLength(5);
    LEVELS.forEach((level, i) => {
      // Element tags in order (so string types, DN shape and order, extension order) and the
      // exact values of OIDs, BOOLEANs, basicConstraints and keyUsage.
      expect({ level, tokens: derTokens(a[i]!) }).toEqual({ level, tokens: derTokens(b[i]!) });
      const [x, y] = [new X509Certificate(a[i]!), new X509Certificate(b[i]!)];
      const [lo, hi] = VALIDITY[level];
      for (const c of [x, y]) {
        expect(validityMs(c)).toBeGreaterThanOrEqual(lo);
        expect(validityMs(c)).toBeLessThanOrEqual(hi);
      }
      expect(x.ca).toBe(y.ca);
      // Serial layout: random 16 bytes (root, regional, zonal), 20 (instance); the leaf's is
      // enclave id || 00000000 || issuance time in seconds.
      const serialBytes = (c: X509Certificate) => c.serialNumber.replace(/^(00)+/, '').length / 2;
      if (level === 'leaf') {
        for (const c of [x, y]) {
          const s = c.serialNumber.toLowerCase().padStart(32, '0');
          const moduleId = c.subject.match(/CN=(\S+)\.us-east-1\.aws/)![1]!;
          expect(s.slice(0, 16)).toBe(moduleId.slice(-16));
          expect(s.slice(16, 24)).toBe('00000000');
          expect(parseInt(s.slice(24), 16) * 1000).toBe(Date.parse(c.validFrom) + 3000);
        }
      } else {
        const want = level === 'instance' ? 20 : 16;
        expect(serialBytes(x)).toBeGreaterThanOrEqual(want - 1);
        expect(serialBytes(x)).toBeLessThanOrEqual(want);
        expect(serialBytes(y)).toBeLessThanOrEqual(want);
      }
    });
  });

  it('has the same extensions, criticality, key usage and path lengths as openssl shows them', async () => {
    if (!haveOpenssl) {
      console.warn('NOT CHECKED: openssl was not found; install openssl (.ci/run) to compare extensions as openssl renders them');
      return;
    }
    const real = realDocument(n);
    const [a, b] = [certsOf(await twinOf(real, form)), certsOf(real)];
    LEVELS.forEach((level, i) => expect({ level, text: extensionText(a[i]!) }).toEqual({ level, text: extensionText(b[i]!) }));
  });
});

describe('our chain next to the real one', () => {
  it('differs from the real root in name and key only, and says it is a test root', async () => {
    const ours = new X509Certificate(certsOf(await makeAttestationDocument({ seed: '01' }))[0]!);
    const aws = new X509Certificate(readFileSync('vectors/aws/aws-nitro-root-g1.pem'));
    expect(ours.subject).toContain('nsm-emulator');
    expect(ours.subject).toContain('TEST ONLY');
    expect(ours.subject).not.toBe(aws.subject);
    expect(ours.publicKey.asymmetricKeyDetails).toEqual(aws.publicKey.asymmetricKeyDetails);
    expect(ours.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });
});

describe('the comparison itself', () => {
  it('notices a different payload map form, a missing PCR and a changed certificate profile', async () => {
    const real = realDocument(10);
    await expect(twinOf(real, 'definite').then((d) => compareDocuments(d, real))).rejects.toThrow();
    const [, , payload] = cborx.decode(real) as [unknown, unknown, Uint8Array];
    const f = cborx.decode(payload) as Map<string, unknown>;
    const fewer = await makeAttestationDocument({
      moduleId: f.get('module_id') as string,
      timestamp: Number(f.get('timestamp')),
      pcrs: new Map([...(f.get('pcrs') as Map<number, Uint8Array>)].slice(0, 15).map(([k, v]) => [k, new Uint8Array(v)])),
      pcrSet: 'given',
      userData: f.get('user_data') as Uint8Array,
      seed: '01',
    });
    expect(() => compareDocuments(fewer, real)).toThrow();
    const [ours, theirs] = [certsOf(await twinOf(real, 'indefinite')), certsOf(real)];
    // The 2022 instance profile (no SKI/AKI) differs from the 2024+ one we follow.
    expect(derTokens(ours[3]!)).not.toEqual(derTokens(certsOf(realDocument(1))[3]!));
    // A leaf compared with an instance certificate differs.
    expect(derTokens(ours[4]!)).not.toEqual(derTokens(theirs[3]!));
  });
});

// Certificate dates like AWS's: the ranges are measured on the real documents in vectors/aws,
// then a fresh device's documents are held to them; a CA made just now signs at once and in the
// past; the committed CA signs across the whole of its root's validity.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { NsmDevice, verifyAttestationDocument } from '../src/index.js';
import { runCli } from './helpers/cli.js';

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;
/** Start of each certificate before the document, over the real documents (issue #9). */
const RANGES = {
  regional: [0.6 * D, 5 * D],
  zonal: [3 * H, 20 * H],
  instance: [6 * MIN, 10 * H],
  leaf: [3 * S, 36 * MIN + 30 * S],
} as const;
const LEVELS = ['regional', 'zonal', 'instance', 'leaf'] as const;

const cbor = new Decoder({ mapsAsObjects: false, useRecords: false });

/** How long before the document each certificate (regional, zonal, instance, leaf) started, ms. */
function offsets(doc: Uint8Array): { timestamp: number; offsets: number[] } {
  const [, , payload] = cbor.decode(doc) as [unknown, unknown, Uint8Array];
  const m = cbor.decode(payload) as Map<string, unknown>;
  const timestamp = Number(m.get('timestamp'));
  const certs = [...(m.get('cabundle') as Uint8Array[]).slice(1), m.get('certificate') as Uint8Array];
  return { timestamp, offsets: certs.map((c) => timestamp - Date.parse(new X509Certificate(c).validFrom)) };
}

const within = (v: number, [lo, hi]: readonly [number, number]) => v >= lo && v <= hi;

describe('certificate start times', () => {
  it('of the real AWS documents in vectors/aws fall in the ranges used here', () => {
    for (let n = 1; n <= 10; n++) {
      const doc = new Uint8Array(Buffer.from(readFileSync(new URL(`../vectors/aws/aws-real-doc-${n}.cbor.hex`, import.meta.url), 'utf8').trim(), 'hex'));
      const { offsets: o } = offsets(doc);
      o.forEach((v, i) => expect(within(v, RANGES[LEVELS[i]!]), `doc ${n} ${LEVELS[i]} ${v / H} h`).toBe(true));
      expect(new Set(o).size).toBe(4);
    }
  });

  it("of a fresh device's first document fall in the same ranges, all four different, seeded or not", async () => {
    const seen: number[][] = [];
    for (let i = 0; i < 40; i++) {
      const t = Date.UTC(2020, 0, 1) + i * 7_919_113_000 + (i % 7) * 3_600_123;
      const seeded = i % 2 === 0;
      const device = new NsmDevice({ ...(seeded ? { seed: i.toString(16).padStart(2, '0') } : {}), clock: () => t });
      const { timestamp, offsets: o } = offsets(await device.attestation());
      expect(timestamp).toBe(t);
      o.forEach((v, k) => expect(within(v, RANGES[LEVELS[k]!]), `${new Date(t).toISOString()} ${LEVELS[k]} ${v / H} h`).toBe(true));
      expect(new Set(o).size).toBe(4);
      seen.push(o);
    }
    // They spread over the ranges rather than sitting at one value.
    for (const k of [0, 1, 2]) {
      const col = seen.map((o) => o[k]!);
      const [lo, hi] = RANGES[LEVELS[k]!];
      expect(Math.max(...col) - Math.min(...col), LEVELS[k]).toBeGreaterThan((hi - lo) / 2);
    }
  });

  it('are reproducible for a seeded device, and re-issued as the clock moves', async () => {
    const t = Date.UTC(2031, 4, 5, 6, 7, 8);
    const a = await new NsmDevice({ seed: '0d', clock: () => t }).attestation();
    const b = await new NsmDevice({ seed: '0d', clock: () => t }).attestation();
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    let now = t;
    const device = new NsmDevice({ seed: '0d', clock: () => now });
    const first = offsets(await device.attestation()).offsets;
    now = t + 30 * MIN; // same leaf: every certificate is 30 minutes older
    expect(offsets(await device.attestation()).offsets).toEqual(first.map((o) => o + 30 * MIN));
    const root = new X509Certificate(readFileSync('certs/root.pem'));
    for (const later of [4 * H, 2 * D, 9 * D, 45 * D]) {
      now = t + later; // a new leaf, and above it whatever is in use then: the ranges hold again
      const doc = await device.attestation();
      const o = offsets(doc).offsets;
      o.forEach((v, k) => expect(within(v, RANGES[LEVELS[k]!]), `+${later / H} h ${LEVELS[k]}`).toBe(true));
      // node:crypto: each certificate is signed by the one above it and valid at the document time.
      const [, , payload] = cbor.decode(doc) as [unknown, unknown, Uint8Array];
      const m = cbor.decode(payload) as Map<string, unknown>;
      const chain = [root, ...[...(m.get('cabundle') as Uint8Array[]).slice(1), m.get('certificate') as Uint8Array].map((c) => new X509Certificate(c))];
      for (let i = 1; i < chain.length; i++) {
        expect(chain[i]!.verify(chain[i - 1]!.publicKey) && chain[i]!.checkIssued(chain[i - 1]!), `+${later / H} h link ${i}`).toBe(true);
        expect(Date.parse(chain[i]!.validFrom) <= now && now < Date.parse(chain[i]!.validTo)).toBe(true);
      }
    }
  });
});

describe('a CA made just now', () => {
  it('signs at once: ca init then attest --ca, 30 times in a row, 30 documents that verify', async () => {
    for (let i = 0; i < 30; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'nsm-ca-now-'));
      expect((await runCli(['ca', 'init', '--dir', dir])).code).toBe(0);
      const r = await runCli(['attest', '--ca', dir, '--format', 'hex']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const v = await runCli(['verify', '-', '--root', join(dir, 'root.pem')], r.stdout);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }
  });

  it('signs in the past: attest --time 2025-01-01T00:00:00Z --seed 01 twice is byte-identical and verifies at the document time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsm-ca-now-'));
    expect((await runCli(['ca', 'init', '--dir', dir])).code).toBe(0);
    const args = ['attest', '--ca', dir, '--time', '2025-01-01T00:00:00Z', '--seed', '01', '--format', 'hex'];
    const [a, b] = [await runCli(args), await runCli(args)];
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const v = await runCli(['verify', '-', '--root', join(dir, 'root.pem'), '--time', 'doc'], a.stdout);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const doc = new Uint8Array(Buffer.from(a.stdout.trim(), 'hex'));
    await verifyAttestationDocument(doc, { root: readFileSync(join(dir, 'root.pem'), 'utf8'), time: Date.UTC(2025, 0, 1) });
  });
});

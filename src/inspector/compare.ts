/**
 * Comparisons the inspector offers: a document's PCRs against expected values (a
 * `describe-eif` / `nitro-cli describe-eif` JSON, or a list of `N=HEX` lines), and two
 * documents field by field.
 * @module
 */
import type { InspectReport } from './report.js';

/** The expected values could not be read. */
export class ExpectedPcrsError extends Error {
  override readonly name = 'ExpectedPcrsError';
}

const PCR_HEX = /^(?:0x)?([0-9a-fA-F]{96}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/;

function pcrIndex(key: string): number | null {
  const m = /^(?:PCR)?\s*(\d{1,2})$/i.exec(key.trim());
  if (!m) return null;
  const n = Number(m[1]);
  return n < 32 ? n : null;
}

function addValue(out: Map<number, string>, key: string, value: unknown, where: string): void {
  const index = pcrIndex(key);
  if (index === null) return; // other describe-eif fields (HashAlgorithm, ...) are not PCRs
  if (typeof value !== 'string' || !PCR_HEX.test(value.trim())) {
    throw new ExpectedPcrsError(`${where}: ${key} is not a PCR value in hex`);
  }
  out.set(index, value.trim().replace(/^0x/, '').toLowerCase());
}

/**
 * Expected PCR values from text: a JSON object whose `Measurements` (describe-eif's shape) or
 * top level maps `PCR0`/`0` to hex, or lines such as `PCR0=ab…`, `0: ab…` or `16 ab…`.
 */
export function parseExpectedPcrs(text: string): Map<number, string> {
  const out = new Map<number, string>();
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (e) {
      throw new ExpectedPcrsError(`not valid JSON (${(e as Error).message})`);
    }
    const obj = value as Record<string, unknown>;
    const table = (obj['Measurements'] ?? obj['measurements'] ?? obj['pcrs'] ?? obj) as Record<string, unknown>;
    if (typeof table !== 'object' || table === null) throw new ExpectedPcrsError('the JSON holds no PCR table');
    for (const [k, v] of Object.entries(table)) addValue(out, k, v, 'JSON');
  } else {
    for (const [n, raw] of trimmed.split(/\r?\n/).entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const m = /^(PCR\s*\d{1,2}|\d{1,2})\s*[=:\s]\s*(\S+)$/i.exec(line);
      if (!m) throw new ExpectedPcrsError(`line ${n + 1}: expected N=HEX (for example 0=ab12…), found '${line.slice(0, 40)}'`);
      const before = out.size;
      addValue(out, m[1]!.replace(/\s+/g, ''), m[2], `line ${n + 1}`);
      if (out.size === before && pcrIndex(m[1]!) === null) throw new ExpectedPcrsError(`line ${n + 1}: PCR index out of 0..31`);
    }
  }
  if (out.size === 0) throw new ExpectedPcrsError('no PCR values found');
  return out;
}

export interface PcrComparison {
  readonly index: number;
  readonly expected: string;
  /** The document's value, or null when it has none at that index. */
  readonly actual: string | null;
  readonly match: boolean;
}

/** Each expected PCR beside the document's value. */
export function comparePcrs(report: InspectReport, expected: ReadonlyMap<number, string>): PcrComparison[] {
  const actual = new Map(report.pcrs.map((p) => [p.index, p.hex]));
  return [...expected]
    .sort(([a], [b]) => a - b)
    .map(([index, want]) => {
      const got = actual.get(index) ?? null;
      return { index, expected: want, actual: got, match: got === want };
    });
}

export interface FieldDifference {
  readonly field: string;
  readonly left: string;
  readonly right: string;
  readonly same: boolean;
}

function summary(r: InspectReport): Map<string, string> {
  const m = new Map<string, string>();
  m.set('verdict', r.verdict.valid ? `valid (${r.verdict.root})` : `invalid: ${r.verdict.rule}`);
  m.set('module_id', r.moduleId ?? '');
  m.set('timestamp', r.timestamp === null ? '' : new Date(r.timestamp).toISOString());
  m.set('digest', r.digest ?? '');
  for (const p of r.pcrs) m.set(`PCR${p.index}`, p.hex);
  for (const f of r.fields) m.set(f.name, f.present ? f.hex : '(absent)');
  for (const c of r.chain) m.set(`${c.position} subject`, c.subject);
  return m;
}

/** Two documents field by field, every field either has, in a stable order. */
export function diffReports(left: InspectReport, right: InspectReport): FieldDifference[] {
  const a = summary(left);
  const b = summary(right);
  const keys = [...a.keys()];
  for (const k of b.keys()) if (!a.has(k)) keys.push(k);
  return keys.map((field) => {
    const l = a.get(field) ?? '(absent)';
    const r = b.get(field) ?? '(absent)';
    return { field, left: l, right: r, same: l === r };
  });
}

/**
 * The inspector page's script: reads a document from a drop, a file, pasted text or
 * `#doc=<base64url>`, builds its report with the core (report.ts) and renders it. Everything
 * runs here: the page makes no requests beyond loading itself. Untrusted values are only ever
 * written with textContent.
 * @module
 */
import { committedTestCa } from '../attestation/default-attester.js';
import { AWS_NITRO_ROOT_G1_PEM } from '../attestation/aws-root.js';
import { decodeDocumentInput } from '../attestation/document-input.js';
import { comparePcrs, diffReports, parseExpectedPcrs } from './compare.js';
import { type CertificateRow, type InspectReport, type TrustedRoot, inspectDocument } from './report.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const state: { bytes: Uint8Array | null; report: InspectReport | null; customRoot: Uint8Array | string | null; turn: number } = {
  turn: 0,
  bytes: null,
  report: null,
  customRoot: null,
};

function roots(): TrustedRoot[] {
  const test: TrustedRoot = { name: "the emulator's test root", certificate: committedTestCa().root.der };
  const aws: TrustedRoot = { name: 'AWS Nitro Enclaves Root-G1', certificate: AWS_NITRO_ROOT_G1_PEM };
  switch ($<HTMLSelectElement>('root').value) {
    case 'test':
      return [test];
    case 'aws':
      return [aws];
    case 'custom':
      return state.customRoot ? [{ name: 'the chosen root', certificate: state.customRoot }] : [];
    default:
      return [test, aws];
  }
}

function relative(ms: number, now: number): string {
  const d = Math.abs(now - ms);
  const units: [number, string][] = [[365.25 * 864e5, 'year'], [864e5, 'day'], [36e5, 'hour'], [6e4, 'minute'], [1e3, 'second']];
  const [size, name] = units.find(([u]) => d >= u) ?? [1e3, 'second'];
  const n = Math.floor(d / size);
  const text = `${n} ${name}${n === 1 ? '' : 's'}`;
  return ms <= now ? `${text} ago` : `in ${text}`;
}

const iso = (ms: number) => new Date(ms).toISOString();

function showError(message: string): void {
  $('input-error').textContent = message;
}

function renderVerdict(r: InspectReport): void {
  const section = $('verdict');
  section.hidden = false;
  section.dataset['valid'] = String(r.verdict.valid);
  section.dataset['rule'] = r.verdict.rule ?? '';
  $('verdict-text').textContent = r.verdict.valid
    ? `Valid: signed under ${r.verdict.root}, chain checked at ${iso(r.verdict.at!)}`
    : `Invalid (${r.verdict.rule}): ${r.verdict.message}`;
  const list = $('verdict-checks');
  list.replaceChildren(...r.checks.map((c) => el('li', c.valid ? `${c.root}: valid` : `${c.root}: ${c.message}`)));
}

function renderSummary(r: InspectReport): void {
  const dl = $('summary-list');
  dl.replaceChildren();
  const add = (k: string, v: string) => dl.append(el('dt', k), el('dd', v));
  if (r.moduleId !== null) add('module_id', r.moduleId);
  if (r.timestamp !== null) add('timestamp', `${iso(r.timestamp)} (${relative(r.timestamp, Date.now())}; ${r.timestamp} ms)`);
  if (r.digest !== null) add('digest', r.digest);
  if (r.payloadMap !== null) add('payload map', r.payloadMap === 'indefinite' ? 'indefinite length (AWS since 2025)' : 'definite length');
  $('summary').hidden = r.decodeError !== null;
}

function renderPcrs(r: InspectReport, expected: Map<number, string> | null): void {
  const compared = expected ? new Map(comparePcrs(r, expected).map((c) => [c.index, c])) : null;
  const rows = r.pcrs.map((p) => {
    const tr = el('tr');
    tr.dataset['pcr'] = String(p.index);
    tr.className = p.zero ? 'zero' : 'nonzero';
    const stateText = [p.zero ? 'zero' : 'non-zero', p.lockedAtBoot ? 'locked at boot' : 'extendable'].join(', ');
    const cmp = compared?.get(p.index);
    const exp = el('td', cmp ? (cmp.match ? '✓ matches' : `✗ expected ${cmp.expected}`) : '', cmp ? (cmp.match ? 'match' : 'mismatch') : '');
    if (cmp) tr.dataset['match'] = String(cmp.match);
    tr.append(el('td', `PCR${p.index}`), el('td', p.hex, 'hex'), el('td', stateText), exp);
    return tr;
  });
  $('pcr-rows').replaceChildren(...rows);
  $('pcrs').hidden = r.pcrs.length === 0;
}

function renderFields(r: InspectReport): void {
  const blocks = r.fields.map((f) => {
    const div = el('div', undefined, 'field');
    div.dataset['field'] = f.name;
    div.append(el('h3', f.name));
    if (!f.present) {
      div.append(el('p', '(absent)', 'note'));
      return div;
    }
    div.append(el('p', `${f.length} bytes`, 'note'));
    if (f.key) div.append(el('p', f.key.text));
    if (f.json !== null) div.append(el('pre', f.json));
    else if (f.text !== null) div.append(el('pre', `UTF-8: ${f.text}`));
    div.append(el('pre', f.hex || '(empty)'));
    return div;
  });
  $('field-list').replaceChildren(...blocks);
  $('fields').hidden = r.fields.length === 0;
}

// A logarithmic axis around the document time: minutes to decades fit on one line.
const scale = (d: number) => Math.sign(d) * Math.log10(1 + Math.abs(d) / 6e4);
const TICKS: [number, string][] = [[36e5, '1 h'], [864e5, '1 d'], [30 * 864e5, '30 d'], [365.25 * 864e5, '1 y'], [3652.5 * 864e5, '10 y']];

function renderTimeline(r: InspectReport): void {
  const t = r.timestamp ?? Date.now();
  const usable = r.chain.filter((c) => c.error === null);
  const range = Math.max(1, ...usable.flatMap((c) => [Math.abs(scale(c.notBefore - t)), Math.abs(scale(c.notAfter - t))])) * 1.05;
  const pos = (ms: number) => 50 + (50 * scale(ms - t)) / range;
  const rows = r.chain.map((c: CertificateRow) => {
    const row = el('div', undefined, 'tl-row');
    row.dataset['position'] = c.position;
    const label = el('div', `${c.role} (${c.position})`, 'tl-label');
    const track = el('div', undefined, 'tl-track');
    track.append(el('div', undefined, 'doc-marker'));
    if (c.error === null) {
      const bar = el('div', undefined, c.coversDocument ? 'tl-bar' : 'tl-bar outside');
      const left = pos(c.notBefore);
      bar.style.left = `${left}%`;
      bar.style.width = `${Math.max(0.3, pos(c.notAfter) - left)}%`;
      bar.title = `${c.subject}: ${iso(c.notBefore)} to ${iso(c.notAfter)}`;
      bar.dataset['covers'] = String(c.coversDocument);
      track.append(bar);
    }
    row.append(label, track);
    return row;
  });
  const axis = el('div', undefined, 'tl-axis');
  const doc = el('span', 'document', 'tl-tick');
  doc.style.left = '50%';
  axis.append(doc);
  for (const [ms, name] of TICKS) {
    if (Math.abs(scale(ms)) > range) continue;
    for (const sign of [-1, 1]) {
      const tick = el('span', `${sign < 0 ? '−' : '+'}${name}`, 'tl-tick');
      tick.style.left = `${pos(t + sign * ms)}%`;
      axis.append(tick);
    }
  }
  $('timeline').replaceChildren(...rows, axis);
  const table = r.chain.map((c) => {
    const tr = el('tr');
    tr.dataset['position'] = c.position;
    if (c.error !== null) {
      tr.append(el('td', c.position), el('td', `cannot be parsed: ${c.error}`, 'mismatch'), el('td'), el('td'), el('td'));
      return tr;
    }
    const valid = `${iso(c.notBefore)} to ${iso(c.notAfter)}${c.coversDocument ? '' : ' (does not cover the document time)'}`;
    const ca = c.ca ? `CA${c.pathLen === null ? '' : `, pathLen ${c.pathLen}`}; ` : '';
    tr.append(el('td', `${c.role} (${c.position})`), el('td', c.subject), el('td', c.serial, 'hex'), el('td', valid, c.coversDocument ? '' : 'mismatch'), el('td', ca + c.keyUsage.join(', ')));
    return tr;
  });
  $('chain-rows').replaceChildren(...table);
  $('chain').hidden = r.chain.length === 0;
}

function render(r: InspectReport): void {
  renderVerdict(r);
  renderSummary(r);
  renderPcrs(r, null);
  renderFields(r);
  renderTimeline(r);
  $('expected-result').textContent = '';
  $('diff').hidden = true;
  $('other-result').textContent = '';
  document.body.dataset['ready'] = 'true';
}

async function inspect(bytes: Uint8Array): Promise<InspectReport> {
  const time = $<HTMLSelectElement>('time').value === 'now' ? Date.now() : 'document';
  return inspectDocument(bytes, { roots: roots(), time });
}

async function open(input: Uint8Array | string): Promise<void> {
  showError('');
  document.body.dataset['ready'] = 'false';
  try {
    state.bytes = decodeDocumentInput(input);
  } catch (e) {
    showError((e as Error).message);
    document.body.dataset['ready'] = 'true';
    return;
  }
  const turn = ++state.turn;
  const report = await inspect(state.bytes);
  if (turn === state.turn) render((state.report = report)); // a later open or re-check wins
}

async function readFile(file: File): Promise<Uint8Array> {
  if (file.size > 1 << 20) throw new Error(`${file.name} is ${file.size} bytes; an attestation document is at most a few tens of KiB`);
  return new Uint8Array(await file.arrayBuffer());
}

async function openFile(file: File | undefined): Promise<void> {
  if (!file) return;
  try {
    await open(await readFile(file));
  } catch (e) {
    showError((e as Error).message);
  }
}

function fromHash(): void {
  const m = /(?:^#|&)doc=([A-Za-z0-9_\-+/=%]+)/.exec(location.hash);
  if (m) void open(decodeURIComponent(m[1]!));
}

async function comparePcrValues(): Promise<void> {
  const out = $('expected-result');
  if (!state.report) {
    out.textContent = 'Open a document first.';
    return;
  }
  try {
    const expected = parseExpectedPcrs($<HTMLTextAreaElement>('expected').value);
    const rows = comparePcrs(state.report, expected);
    const bad = rows.filter((r) => !r.match);
    out.textContent = bad.length === 0 ? `All ${rows.length} expected PCRs match.` : `${bad.length} of ${rows.length} expected PCRs differ: ${bad.map((r) => `PCR${r.index}`).join(', ')}.`;
    out.className = bad.length === 0 ? 'match' : 'mismatch';
    renderPcrs(state.report, expected);
  } catch (e) {
    out.textContent = (e as Error).message;
    out.className = 'error';
  }
}

async function compareDocuments(input: Uint8Array | string): Promise<void> {
  const out = $('other-result');
  if (!state.report) {
    out.textContent = 'Open a document first.';
    return;
  }
  let other: InspectReport;
  try {
    other = await inspect(decodeDocumentInput(input));
  } catch (e) {
    out.textContent = (e as Error).message;
    out.className = 'error';
    return;
  }
  const diff = diffReports(state.report, other);
  const differing = diff.filter((d) => !d.same);
  out.textContent = differing.length === 0 ? 'The documents agree on every field.' : `${differing.length} fields differ: ${differing.map((d) => d.field).join(', ')}.`;
  out.className = '';
  $('diff-rows').replaceChildren(
    ...diff.map((d) => {
      const tr = el('tr', undefined, d.same ? '' : 'differs');
      tr.dataset['field'] = d.field;
      tr.dataset['same'] = String(d.same);
      tr.append(el('th', `${d.same ? '' : '≠ '}${d.field}`), el('td', d.left, 'hex'), el('td', d.right, 'hex'));
      tr.firstElementChild!.setAttribute('scope', 'row');
      return tr;
    }),
  );
  $('diff').hidden = false;
}

async function again(): Promise<void> {
  if (!state.bytes) return;
  const turn = ++state.turn;
  const report = await inspect(state.bytes);
  if (turn === state.turn) render((state.report = report));
}

/** A certificate (PEM text or DER, which starts 30; a document starts 84 or d2) to trust from now on. */
function certificateInput(bytes: Uint8Array): string | Uint8Array | null {
  if (bytes[0] === 0x30) return bytes;
  const text = new TextDecoder().decode(bytes);
  return text.includes('-----BEGIN CERTIFICATE-----') ? text : null;
}

/** Trusts `bytes` from now on; re-checks the open document unless another is about to open. */
async function useRoot(bytes: Uint8Array, recheck = true): Promise<void> {
  const cert = certificateInput(bytes);
  if (cert === null) throw new Error('the root file is not a certificate (PEM or DER)');
  state.customRoot = cert;
  $<HTMLSelectElement>('root').value = 'custom';
  if (recheck) await again();
}

/** Dropped files: certificates become the trusted root, then the document (if any) opens. */
async function dropped(files: File[]): Promise<void> {
  try {
    const read = await Promise.all(files.map(readFile));
    const doc = read.find((b) => certificateInput(b) === null);
    for (const bytes of read) if (certificateInput(bytes) !== null) await useRoot(bytes, doc === undefined);
    if (doc) await open(doc);
  } catch (e) {
    showError((e as Error).message);
  }
}

function wire(): void {
  const drop = $('drop');
  const file = $<HTMLInputElement>('file');
  $('choose').addEventListener('click', () => file.click());
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void dropped(Array.from(e.dataTransfer?.files ?? []));
  });
  file.addEventListener('change', () => void openFile(file.files?.[0]));
  $('inspect').addEventListener('click', () => void open($<HTMLTextAreaElement>('paste').value));
  $('root').addEventListener('change', () => void again());
  $('time').addEventListener('change', () => void again());
  const rootFile = $<HTMLInputElement>('root-file');
  rootFile.addEventListener('change', async () => {
    const f = rootFile.files?.[0];
    if (!f) return;
    try {
      await useRoot(await readFile(f));
    } catch (e) {
      showError((e as Error).message);
    }
  });
  $('compare-pcrs').addEventListener('click', () => void comparePcrValues());
  $('compare-docs').addEventListener('click', () => void compareDocuments($<HTMLTextAreaElement>('other').value));
  const otherFile = $<HTMLInputElement>('other-file');
  otherFile.addEventListener('change', async () => {
    const f = otherFile.files?.[0];
    if (f) void compareDocuments(await readFile(f));
  });
  window.addEventListener('hashchange', fromHash);
  fromHash();
  if (!/doc=/.test(location.hash)) document.body.dataset['ready'] = 'true';
}

wire();

// The inspector page in a real browser (Debian's Chromium driven by playwright-core): a real
// AWS document, an emulator document and a broken one, PCR comparison, two documents side by
// side, keyboard use, layout at 1000x700, no console errors and no request beyond the page.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, FileChooser, Page } from 'playwright-core';
import { NsmDevice } from '../src/index.js';
import { InspectorServer } from '../src/node/inspector-server.js';
import { hex, unhex } from './helpers/hex.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const OUT = 'test-output/inspector';
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser) console.warn(`inspector browser tests skipped: no Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium; set CHROMIUM_PATH)`);

const awsDoc = unhex(readFileSync('vectors/aws/aws-real-doc-10.cbor.hex', 'utf8').trim());
const awsFacts = JSON.parse(readFileSync('vectors/aws/aws-real-doc-10.json', 'utf8')) as { module_id: string; pcrs: Record<string, string> };
const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');

describe.skipIf(!haveBrowser)('inspector page in Chromium', () => {
  let server: InspectorServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const foreign: string[] = [];
  let emulatorDoc: Uint8Array;
  let device: NsmDevice;
  let onChooser: (c: FileChooser) => void = () => {};

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    server = await InspectorServer.start();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('filechooser', (c) => onChooser(c));
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) foreign.push(r.url());
    });
    device = new NsmDevice({ seed: '5eed' });
    emulatorDoc = await device.attestation({ userData: new TextEncoder().encode('{"build":"ci"}'), nonce: new Uint8Array([0xab]) });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function openDoc(doc: Uint8Array): Promise<void> {
    await page.goto('about:blank');
    await page.goto(`${server.url}#doc=${b64url(doc)}`);
    await page.waitForSelector('body[data-ready="true"]');
  }

  it('a real AWS document: valid under AWS Root-G1, PCR rows, a five-row chain timeline', async () => {
    await openDoc(awsDoc);
    await expect(page.getAttribute('#verdict', 'data-valid')).resolves.toBe('true');
    expect(await page.textContent('#verdict-text')).toContain('AWS Nitro Enclaves Root-G1');
    expect(await page.textContent('#summary-list')).toContain(awsFacts.module_id);
    const rows = await page.$$eval('#pcr-rows tr', (trs) => trs.map((t) => [t.getAttribute('data-pcr'), t.className, t.querySelector('.hex')!.textContent]));
    expect(rows).toHaveLength(16);
    for (const [index, cls, value] of rows) {
      expect(value).toBe(awsFacts.pcrs[index!]);
      expect(cls).toBe(/^0+$/.test(value!) ? 'zero' : 'nonzero');
    }
    const bars = await page.$$eval('#timeline .tl-row', (r) => r.map((x) => [x.getAttribute('data-position'), x.querySelector('.tl-bar')?.getAttribute('data-covers')]));
    expect(bars).toEqual([['cabundle[0]', 'true'], ['cabundle[1]', 'true'], ['cabundle[2]', 'true'], ['cabundle[3]', 'true'], ['certificate', 'true']]);
    expect(await page.$$eval('#timeline .doc-marker', (m) => m.length)).toBe(5);
    // The leaf window is narrower than the root's on the axis, and both contain the marker at 50%.
    const widths = await page.$$eval('#timeline .tl-bar', (b) => b.map((x) => [parseFloat((x as HTMLElement).style.left), parseFloat((x as HTMLElement).style.width)]));
    for (const [left, width] of widths) expect(left! <= 50 && left! + width! >= 50).toBe(true);
    expect(widths[4]![1]!).toBeLessThan(widths[0]![1]!);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1000);
    await page.screenshot({ path: `${OUT}/aws-document.png`, fullPage: true });
  });

  it('the same document checked now: its chain has expired (chain.validity)', async () => {
    await page.selectOption('#time', 'now');
    await page.waitForFunction(() => document.querySelector('#verdict')?.getAttribute('data-valid') === 'false');
    expect(await page.getAttribute('#verdict', 'data-rule')).toBe('chain.validity');
    await page.selectOption('#time', 'document');
  });

  it('an emulator document: valid under the test root, user_data shown as JSON', async () => {
    await openDoc(emulatorDoc);
    await expect(page.getAttribute('#verdict', 'data-valid')).resolves.toBe('true');
    expect(await page.textContent('#verdict-text')).toContain("the emulator's test root");
    expect(await page.textContent('#summary-list')).toContain(device.moduleId);
    expect(await page.textContent('[data-field="user_data"] pre')).toContain('"build": "ci"');
    expect(await page.textContent('[data-field="nonce"]')).toContain('ab');
    await page.screenshot({ path: `${OUT}/emulator-document.png`, fullPage: true });
  });

  it('a broken document: invalid, naming the signature rule', async () => {
    const bad = emulatorDoc.slice();
    bad[bad.length - 5]! ^= 0x40;
    await openDoc(bad);
    await expect(page.getAttribute('#verdict', 'data-valid')).resolves.toBe('false');
    expect(await page.getAttribute('#verdict', 'data-rule')).toBe('signature');
    expect(await page.textContent('#verdict-text')).toMatch(/^Invalid \(signature\)/);
    await page.screenshot({ path: `${OUT}/broken-document.png`, fullPage: true });
  });

  it('a root the user drops: the document is checked against it alone', async () => {
    await openDoc(awsDoc);
    // Drop the AWS root and the emulator document together, as a person dragging both files would.
    const transfer = await page.evaluateHandle(
      ([root, doc]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([root], 'root.pem', { type: 'application/x-pem-file' }));
        dt.items.add(new File([new Uint8Array(doc)], 'doc.cbor'));
        return dt;
      },
      [readFileSync('vectors/aws/aws-nitro-root-g1.pem', 'utf8'), [...emulatorDoc]] as const,
    );
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
    await page.waitForFunction(() => document.querySelector('#verdict-text')?.textContent?.includes('chain.root'));
    expect(await page.inputValue('#root')).toBe('custom');
    expect(await page.getAttribute('#verdict', 'data-rule')).toBe('chain.root');
    expect(await page.textContent('#verdict-checks')).toContain('the chosen root');
    // The committed test root chosen through the file field: the emulator document is valid under it.
    await page.setInputFiles('#root-file', { name: 'root.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from(readFileSync('certs/root.pem')) });
    await page.waitForSelector('#verdict[data-valid="true"]');
    expect(await page.textContent('#verdict-text')).toContain('the chosen root');
    await page.selectOption('#root', 'auto');
  });

  it('expected PCRs from describe-eif JSON: matches and a mismatch highlighted', async () => {
    await openDoc(awsDoc);
    const measurements = { Measurements: { HashAlgorithm: 'Sha384 { ... }', PCR0: awsFacts.pcrs['0'], PCR1: awsFacts.pcrs['1'], PCR2: 'ab'.repeat(48) } };
    await page.fill('#expected', JSON.stringify(measurements, null, 2));
    await page.click('#compare-pcrs');
    expect(await page.textContent('#expected-result')).toBe('1 of 3 expected PCRs differ: PCR2.');
    const marks = await page.$$eval('#pcr-rows tr[data-match]', (t) => t.map((x) => [x.getAttribute('data-pcr'), x.getAttribute('data-match')]));
    expect(marks).toEqual([['0', 'true'], ['1', 'true'], ['2', 'false']]);
  });

  it('two documents side by side: the differing fields marked', async () => {
    await openDoc(emulatorDoc);
    const second = await device.attestation({ userData: new TextEncoder().encode('{"build":"ci"}'), nonce: new Uint8Array([0xcd]) });
    await page.fill('#other', hex(second));
    await page.click('#compare-docs');
    await page.waitForSelector('#diff:not([hidden])');
    const differs = await page.$$eval('#diff-rows tr[data-same="false"]', (t) => t.map((x) => x.getAttribute('data-field')));
    expect(differs).toContain('nonce');
    expect(differs).not.toContain('module_id');
    expect(differs).not.toContain('PCR0');
    await page.screenshot({ path: `${OUT}/compare.png`, fullPage: true });
  });

  it('works from the keyboard alone: Enter on "choose a file" opens one; Tab, paste, Tab, Enter', async () => {
    await page.goto('about:blank');
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('choose');
    // The chooser listener was registered in beforeAll, so interception is on before Enter.
    const opened = new Promise<FileChooser>((resolve) => (onChooser = resolve));
    await page.keyboard.press('Enter');
    await (await opened).setFiles({ name: 'doc.cbor', mimeType: 'application/cbor', buffer: Buffer.from(emulatorDoc) });
    await page.waitForSelector('#verdict[data-valid="true"]');
    expect(await page.textContent('#verdict-text')).toContain("the emulator's test root");
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('paste');
    await page.keyboard.insertText(Buffer.from(awsDoc).toString('base64'));
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('inspect');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#verdict[data-valid="true"]');
  });

  it('made no request outside the page and logged no console error', () => {
    expect(foreign.filter((u) => u !== 'about:blank')).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});

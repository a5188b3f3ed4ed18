// Measuring an EIF on two threads (src/node/eif-worker.ts): a worker reads and hashes PCR2's
// ranges itself and takes part of the CRC-32. The results are checked against SHA-384 and CRC-32
// computed directly from the inputs with node:crypto and node:zlib, and against the one-thread
// path; a worker that fails is reported with its reason and the file measured again; a file cut
// short while it is read gets the reader's error, as on one thread.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EifFormatError, buildEifBytes } from '../src/eif/index.js';
import { type MeasureThreadsReport, bootProfileFromEifFile, measureEifFile, measureEifFileWith, nodeCrc32 } from '../src/node/eif-file.js';
import { CRC_BLOCK, SplitCrc, startPcr2Worker } from '../src/node/eif-worker.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-eif-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const extend = (d: Uint8Array) => sha384(new Uint8Array(48), d);
const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));
/** The CRC the EIF header holds: zlib's CRC-32 of the file without the CRC field (bytes 544-547). */
const fileCrc = (f: Uint8Array) => zlib.crc32(f.subarray(548), zlib.crc32(f.subarray(0, 544)));

const META = { imageName: 't', imageVersion: '1', buildMetadata: { buildTime: 'x', buildTool: 'x', buildToolVersion: '0', operatingSystem: 'Linux', kernelVersion: '0' }, dockerInfo: null, customMetadata: null };

// A nitro-cli-shaped image: kernel, cmdline, bootstrap ramdisk, then two application ramdisks
// (PCR2) of odd sizes, so blocks straddle section boundaries.
const kernel = new Uint8Array(randomBytes(300_000));
const cmdline = 'console=ttyS0 reboot=k';
const bootstrap = new Uint8Array(randomBytes(1_200_000));
const app = [new Uint8Array(randomBytes(5 * CRC_BLOCK + 777_777)), new Uint8Array(randomBytes(CRC_BLOCK + 4321))];
const expected = {
  pcr0: hex(extend(sha384(kernel, new TextEncoder().encode(cmdline), bootstrap, ...app))),
  pcr1: hex(extend(sha384(kernel, new TextEncoder().encode(cmdline), bootstrap))),
  pcr2: hex(extend(sha384(...app))),
};
let bytes: Uint8Array = new Uint8Array(0);
let path = '';
beforeAll(async () => {
  ({ bytes } = await buildEifBytes({ kernel, cmdline, ramdisks: [bootstrap, ...app], metadata: META }));
  path = join(dir, 'app.eif');
  writeFileSync(path, bytes);
});

/** Blocks this thread (the worker runs on its own) until `done()`, for at most 20 s. */
function waitFor(done: () => boolean): void {
  const sleep = new Int32Array(new SharedArrayBuffer(4));
  for (const end = Date.now() + 20_000; !done() && Date.now() < end; ) Atomics.wait(sleep, 0, 0, 5);
}

const pcrsOf = (m: { pcrs: { pcr0: Uint8Array; pcr1: Uint8Array; pcr2: Uint8Array } }) => ({ pcr0: hex(m.pcrs.pcr0), pcr1: hex(m.pcrs.pcr1), pcr2: hex(m.pcrs.pcr2) });

/** The ranges PCR2 covers in `bytes`, from its section table (as the spec lays it out). */
function appRanges(f: Uint8Array) {
  const v = new DataView(f.buffer, f.byteOffset);
  const out = [];
  let ramdisks = 0;
  for (let i = 0; i < v.getUint16(26); i++) {
    const at = Number(v.getBigUint64(28 + 8 * i));
    if (v.getUint16(at) === 3 && ramdisks++ > 0) out.push({ offset: at + 12, length: Number(v.getBigUint64(284 + 8 * i)) });
  }
  return out;
}

describe('the CRC split between the threads', () => {
  it('joins the blocks another thread claimed with this thread\'s runs into zlib\'s CRC of the whole input', async () => {
    const data = new Uint8Array(randomBytes(9 * CRC_BLOCK + 12_345));
    const blocks = Math.ceil(data.length / CRC_BLOCK);
    for (const taken of [[], [1], [2, 3], [1, 2, 3, 4, 5, 6, 7, 8], [0, 8], [3, 5, 7]]) {
      const claims = new Int32Array(blocks);
      const crcs = new Int32Array(blocks);
      for (const b of taken) {
        claims[b] = 2; // claimed by the worker, which computed the block's CRC
        crcs[b] = zlib.crc32(data.subarray(b * CRC_BLOCK, (b + 1) * CRC_BLOCK)) | 0;
      }
      const claimable = new Uint8Array(blocks).fill(1);
      claimable[blocks - 1] = 0; // the partial last block is never the worker's
      let settled = 0;
      const crc = new SplitCrc(nodeCrc32, claimable, claims, crcs, CRC_BLOCK, async () => void settled++);
      // Pieces of every size, some straddling block boundaries.
      for (let o = 0, i = 0; o < data.length; i++) {
        const n = Math.min([65_536, 1, CRC_BLOCK + 3, 700_001][i % 4]!, data.length - o);
        crc.update(data.subarray(o, o + n), o);
        o += n;
      }
      expect(await crc.result()).toBe(zlib.crc32(data));
      expect(settled).toBe(taken.length > 0 ? 1 : 0); // waits for the worker only when it owes blocks
      // Every block the worker did not take was claimed by this thread.
      for (let b = 0; b < blocks - 1; b++) expect(claims[b]).toBe(taken.includes(b) ? 2 : 1);
    }
  });
});

/** Feeds the file to the worker's CRC as the reader does: 64 KiB pieces, the header's CRC field (544-547) left out. */
function feedCrc(w: { crc: { update(data: Uint8Array, offset: number): void } }, bytes: Uint8Array): void {
  for (let o = 0; o < bytes.length; o += 65_536) {
    if (o === 0) w.crc.update(bytes.subarray(0, 544), 0);
    const from = Math.max(o, 548);
    w.crc.update(bytes.subarray(from, Math.min(o + 65_536, bytes.length)), from);
  }
}

describe('the PCR2 worker thread', () => {
  it('hashes the ranges of the file and computes the CRC of the blocks it claims first', async () => {
    const ranges = appRanges(bytes);
    const fd = openSync(path, 'r');
    try {
      const w = startPcr2Worker(fd, ranges, bytes.length, nodeCrc32);
      waitFor(() => w.workerCrcBytes > 0); // it started and claimed a block before this thread got there
      feedCrc(w, bytes);
      expect(await w.crc.result()).toBe(fileCrc(bytes));
      expect(hex(await w.result())).toBe(hex(sha384(...app)));
      expect(w.usedWorker).toBe(true);
      expect(w.workerCrcBytes).toBeGreaterThan(0); // it was ahead: the CRC really was split
      await w.stop();
    } finally {
      closeSync(fd);
    }
  });

  it('with blocks of several reads (files over 64 GiB: at most 65536 blocks), the split CRC is still zlib\'s', async () => {
    const ranges = appRanges(bytes);
    const fd = openSync(path, 'r');
    try {
      // ~8.3 MiB in at most 6 blocks: 2 MiB each, two reads per block; two lie inside the first app ramdisk.
      const w = startPcr2Worker(fd, ranges, bytes.length, nodeCrc32, { maxCrcBlocks: 6 });
      expect(w.crcBlock).toBe(2 * CRC_BLOCK);
      waitFor(() => w.workerCrcBytes >= 4 * CRC_BLOCK); // both blocks done before this thread got there
      feedCrc(w, bytes);
      expect(await w.crc.result()).toBe(fileCrc(bytes));
      expect(hex(await w.result())).toBe(hex(sha384(...app)));
      expect(w.workerCrcBytes).toBe(2 * 2 * CRC_BLOCK);
      await w.stop();
    } finally {
      closeSync(fd);
    }
  });

  it('when its result is needed before it started, this thread does the work itself', async () => {
    const ranges = appRanges(bytes);
    const fd = openSync(path, 'r');
    try {
      const w = startPcr2Worker(fd, ranges, bytes.length, nodeCrc32);
      expect(hex(await w.result())).toBe(hex(sha384(...app))); // asked at once: a thread takes ~30 ms to start
      expect(w.usedWorker).toBe(false);
      await w.stop();
    } finally {
      closeSync(fd);
    }
  });

  it('fails with the reason when it cannot read (a directory instead of a file)', async () => {
    const fd = openSync(dir, 'r');
    try {
      const w = startPcr2Worker(fd, [{ offset: 0, length: 100 }], 100, nodeCrc32);
      waitFor(() => w.started);
      await expect(w.result()).rejects.toThrow(/^the hashing thread failed: EISDIR/);
      await w.stop();
    } finally {
      closeSync(fd);
    }
  });
});

describe('measureEifFile on two threads', () => {
  it('gives the PCRs and CRC computed directly from the inputs, as the one-thread path does', async () => {
    for (const parallel of [true, false]) {
      let report: MeasureThreadsReport | undefined;
      const m = await measureEifFile(path, { parallel, onThreads: (r) => (report = r) });
      expect(pcrsOf(m)).toEqual(expected);
      expect(m.layout.crc).toEqual({ stored: fileCrc(bytes), computed: fileCrc(bytes), ok: true });
      // (An image this small is done before a thread has started; then this thread hashes PCR2 too.)
      expect(String(report!.worker || report!.reason)).toMatch(parallel ? /^(true|the worker thread had not started when this thread needed its result)$/ : /^parallel: false$/);
    }
  });

  it('a wrong CRC is reported as on one thread, whether the damage is in the worker\'s blocks or not', async () => {
    const damagedPath = join(dir, 'damaged.eif');
    const r = appRanges(bytes)[0]!;
    // The worker gets a head start (this thread sleeps after starting it), so it claims blocks.
    const headStart: typeof startPcr2Worker = (...args) => {
      const w = startPcr2Worker(...args);
      waitFor(() => w.workerCrcBytes >= 5 * CRC_BLOCK);
      return w;
    };
    for (const at of [600, r.offset + 2 * CRC_BLOCK + 5, r.offset + 3 * CRC_BLOCK + 1, 544]) {
      const damaged = bytes.slice();
      damaged[at]! ^= 0x01;
      writeFileSync(damagedPath, damaged);
      const want = { stored: new DataView(damaged.buffer).getUint32(544), computed: fileCrc(damaged), ok: false };
      expect((await measureEifFile(damagedPath, { parallel: false })).layout.crc).toEqual(want);
      let report: MeasureThreadsReport | undefined;
      expect((await measureEifFileWith(damagedPath, { parallel: true, onThreads: (x) => (report = x) }, headStart)).layout.crc).toEqual(want);
      expect(report!.workerCrcBytes).toBeGreaterThanOrEqual(5 * CRC_BLOCK); // the split really happened
    }
  });

  it('a worker that fails is reported with its reason, and the file is measured again on this thread', async () => {
    const reports: MeasureThreadsReport[] = [];
    // The worker reads a directory's descriptor instead of the file (and is let start first).
    const dirFd = openSync(dir, 'r');
    const broken: typeof startPcr2Worker = (_fd, ranges, size, crc) => {
      const w = startPcr2Worker(dirFd, ranges, size, crc);
      waitFor(() => w.started);
      return w;
    };
    let m;
    try {
      m = await measureEifFileWith(path, { parallel: true, onThreads: (r) => reports.push(r) }, broken);
    } finally {
      closeSync(dirFd);
    }
    expect(pcrsOf(m)).toEqual(expected);
    expect(m.layout.crc.ok).toBe(true);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ worker: false, reason: 'the worker thread failed' });
    expect(reports[0]!.failure).toMatch(/^the hashing thread failed: EISDIR/);

    // Ranges that do not match what the reader found (as if the file changed between the two reads).
    const shifted: typeof startPcr2Worker = (fd, ranges, size, crc) => startPcr2Worker(fd, ranges.map((r) => ({ offset: r.offset + 1, length: r.length - 1 })), size, crc);
    const changed: MeasureThreadsReport[] = [];
    expect(pcrsOf(await measureEifFileWith(path, { parallel: true, onThreads: (r) => changed.push(r) }, shifted))).toEqual(expected);
    expect(changed[0]).toMatchObject({ worker: false, failure: 'the section table changed while the file was read' });

    const none: typeof startPcr2Worker = () => {
      throw new Error('ERR_WORKER_INIT_FAILED');
    };
    const again: MeasureThreadsReport[] = [];
    expect(pcrsOf(await measureEifFileWith(path, { parallel: true, onThreads: (r) => again.push(r) }, none))).toEqual(expected);
    expect(again).toEqual([{ worker: false, reason: 'the worker thread failed', failure: 'no worker thread could be started: ERR_WORKER_INIT_FAILED', workerCrcBytes: 0 }]);
  });

  it('booting from an image file tells the caller how its measurement used threads', async () => {
    const reports: MeasureThreadsReport[] = [];
    const profile = await bootProfileFromEifFile(path, {}, new Date(), undefined, (r) => reports.push(r));
    expect(hex(new Map(profile.pcrs).get(2)!)).toBe(expected.pcr2);
    expect(reports).toEqual([{ worker: false, reason: 'the file is smaller than 32 MiB', workerCrcBytes: 0 }]);
  });

  it('a file cut short while it is read gets the reader\'s TRUNCATED_SECTION, as on one thread', async () => {
    const cutPath = join(dir, 'cut.eif');
    for (const parallel of [true, false]) {
      writeFileSync(cutPath, bytes);
      let cut = false;
      const onProgress = (done: number) => {
        if (!cut && done >= 2 * CRC_BLOCK) {
          cut = true;
          truncateSync(cutPath, 5 * CRC_BLOCK);
        }
      };
      const e = await measureEifFile(cutPath, { parallel, onProgress }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(EifFormatError);
      expect((e as EifFormatError).code).toBe('TRUNCATED_SECTION');
      expect((e as EifFormatError).offset).toBe(5 * CRC_BLOCK);
    }
  });

  it('on one core (taskset -c 0) no worker is started; with two cores one is', async () => {
    let taskset = true;
    try {
      execFileSync('taskset', ['-c', '0', 'true']);
    } catch (e) {
      taskset = false;
      console.warn(`one-core check skipped: taskset -c 0 does not run (${(e as Error).message})`);
    }
    // Large enough for the default to choose two threads: PCR2 covers 34 MiB.
    const { bytes: big } = await buildEifBytes({ kernel, cmdline, ramdisks: [bootstrap, new Uint8Array(34 << 20).fill(7)], metadata: META });
    const bigPath = join(dir, 'big.eif');
    writeFileSync(bigPath, big);
    // Against the built package (npm test builds dist/ first), in a process of its own.
    const script = `
      const { measureEifFile } = await import(${JSON.stringify(new URL('../dist/node/eif-file.js', import.meta.url).href)});
      await measureEifFile(process.argv[1], { onThreads: (r) => console.log(JSON.stringify(r)) });`;
    const node = [process.execPath, '--input-type=module', '-e', script, bigPath];
    const run = (argv: string[]) => JSON.parse(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim()) as MeasureThreadsReport;
    if (taskset) expect(run(['taskset', '-c', '0', ...node])).toEqual({ worker: false, reason: 'this process may use one core', workerCrcBytes: 0 });
    if (availableParallelism() >= 2) {
      const two = run(node);
      expect(String(two.worker || two.reason)).toMatch(/^(true|the worker thread had not started when this thread needed its result)$/);
    }
  }, 30_000);
});

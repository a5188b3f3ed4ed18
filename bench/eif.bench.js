// EIF measuring throughput and memory. Throughput rows compare measuring an image with a plain
// SHA-384 of the same bytes, using the same SHA-384 implementation in the same run (noble for
// the core, node:crypto for the Node path). The memory row describes a 1 GiB image (written by
// this suite into a temp dir, deleted afterwards) in a child process and reports its peak RSS.
//
// Layouts: "one ramdisk" puts all data in kernel + cmdline + first ramdisk, which PCR0 and
// PCR1 both cover (hashed once thanks to the shared prefix). "nitro-cli layout" has a small
// bootstrap ramdisk and a large application ramdisk, which PCR0 and PCR2 must each hash: no
// implementation can do that in less than two SHA-384 passes over those bytes, so that row's
// fair baseline is those two passes (SHA-384 of what PCR0 covers + of what PCR2 covers); its
// ratio against one pass is reported too, without a target.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha384 } from '@noble/hashes/sha2.js';
import { buildEif, buildEifBytes, measureEif } from '../dist/eif/index.js';
import { nodeCrc32, nodeSha384 } from '../dist/node/eif-file.js';
import { compare } from './harness.js';

const MiB = 1 << 20;

function filler(n, seed) {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x;
    b[i + 1] = x >>> 8;
    b[i + 2] = x >>> 16;
    b[i + 3] = x >>> 24;
  }
  return b;
}

const META = {
  imageName: 'bench',
  imageVersion: '1.0',
  buildMetadata: { buildTime: '2026-01-01T00:00:00+00:00', buildTool: 'nsm-emulator bench', buildToolVersion: '0', operatingSystem: 'Linux', kernelVersion: '0' },
  dockerInfo: null,
  customMetadata: null,
};

async function image(kernelMiB, ramdiskMiBs) {
  const kernel = filler(kernelMiB * MiB, 1);
  const ramdisks = ramdiskMiBs.map((m, i) => filler(m * MiB, i + 2));
  const { bytes } = await buildEifBytes({ kernel, cmdline: 'console=ttyS0', ramdisks, metadata: META });
  return { bytes, kernel, ramdisks };
}

const nodeHash = (...parts) => {
  const h = nodeSha384();
  for (const p of parts) h.update(p);
  return h.digest();
};
const nobleHash = (...parts) => {
  const h = sha384.create();
  for (const p of parts) h.update(p);
  return h.digest();
};

function mbps(row, bytes) {
  const mb = bytes / 1e6;
  return { ...row, unit: 'MB/s', opsPerSec: row.opsPerSec * mb, baselineOpsPerSec: row.baselineOpsPerSec * mb };
}

async function throughput() {
  const rows = [];
  const one = await image(2, [6]);
  const nitro = await image(2, [1, 5]);
  const rd = nitro.ramdisks;
  const opts = { rounds: 5, ms: 500 };

  rows.push(
    mbps(await compare({ name: 'measure, one ramdisk (noble)', fn: () => measureEif(one.bytes), baseline: 'SHA-384 of the file (noble)', baselineFn: () => nobleHash(one.bytes), target: 0.9, ...opts }), one.bytes.length),
  );
  rows.push(
    mbps(
      await compare({
        name: 'measure, one ramdisk (node:crypto)',
        fn: () => measureEif(one.bytes, { sha384: nodeSha384, crc32: nodeCrc32 }),
        baseline: 'SHA-384 of the file (node:crypto)',
        baselineFn: () => nodeHash(one.bytes),
        target: 0.9,
        ...opts,
      }),
      one.bytes.length,
    ),
  );
  rows.push(
    mbps(
      await compare({
        name: 'measure, nitro-cli layout (noble)',
        fn: () => measureEif(nitro.bytes),
        baseline: 'SHA-384 of PCR0 bytes + of PCR2 bytes (noble)',
        baselineFn: () => (nobleHash(nitro.kernel, new TextEncoder().encode('console=ttyS0'), rd[0], rd[1]), nobleHash(rd[1])),
        target: 0.9,
        ...opts,
      }),
      nitro.bytes.length,
    ),
  );
  rows.push(
    mbps(
      await compare({
        name: 'measure, nitro-cli layout (node:crypto)',
        fn: () => measureEif(nitro.bytes, { sha384: nodeSha384, crc32: nodeCrc32 }),
        baseline: 'SHA-384 of PCR0 bytes + of PCR2 bytes (node:crypto)',
        baselineFn: () => (nodeHash(nitro.kernel, new TextEncoder().encode('console=ttyS0'), rd[0], rd[1]), nodeHash(rd[1])),
        target: 0.9,
        ...opts,
      }),
      nitro.bytes.length,
    ),
  );
  rows.push(
    mbps(await compare({ name: 'measure, nitro-cli layout vs one pass (noble)', fn: () => measureEif(nitro.bytes), baseline: 'SHA-384 of the file (noble)', baselineFn: () => nobleHash(nitro.bytes), ...opts }), nitro.bytes.length),
  );
  return rows;
}

/** Writes a ~1 GiB nitro-cli-shaped image with the library's writer, from generated chunks. */
async function writeBigEif(path) {
  const block = filler(MiB, 9);
  const gen = (mib) => ({ size: mib * MiB, chunks: async function* () { for (let i = 0; i < mib; i++) yield block; } });
  const built = await buildEif({ kernel: gen(8), cmdline: 'console=ttyS0', ramdisks: [gen(8), gen(1008)], metadata: META, sha384: nodeSha384, crc32: nodeCrc32 });
  const out = createWriteStream(path);
  for await (const c of built.chunks()) if (!out.write(c)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  return built.size;
}

const CHILD = `
const { main } = await import(process.argv[1]);
const { Writable } = await import('node:stream');
const sink = new Writable({ write(c, e, cb) { cb(); } });
const t0 = performance.now();
const code = await main(['describe-eif', '--eif-path', process.argv[2]], { stdin: process.stdin, stdout: sink, stderr: process.stderr });
const ms = performance.now() - t0;
console.log(JSON.stringify({ code, ms, maxRssKiB: process.resourceUsage().maxRSS }));
`;
const FLOOR = `await import(process.argv[1]); console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS }));`;

function child(script, args) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function memory() {
  const dir = mkdtempSync(join(tmpdir(), 'nsm-eif-bench-'));
  try {
    const path = join(dir, 'big.eif');
    const size = await writeBigEif(path);
    const mainJs = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
    const r = child(CHILD, [mainJs, path]);
    if (r.code !== 0) throw new Error(`describe-eif exited ${r.code}: ${r.stderr ?? ''}`);
    const floor = child(FLOOR, [mainJs]);
    const peakMiB = r.maxRssKiB / 1024;
    const limit = 64;
    return [
      {
        name: `describe-eif ${(size / 2 ** 30).toFixed(2)} GiB, peak RSS`,
        unit: 'MiB',
        opsPerSec: peakMiB,
        baseline: `limit (node + CLI loaded: ${(floor.maxRssKiB / 1024).toFixed(1)} MiB)`,
        baselineOpsPerSec: limit,
        ratio: limit / peakMiB,
        target: 1,
        pass: peakMiB <= limit,
        seconds: r.ms / 1000,
        mbPerSec: size / 1e6 / (r.ms / 1000),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run() {
  const rows = await throughput();
  if (process.env.EIF_BENCH_BIG !== '0') rows.push(...(await memory()));
  return rows;
}

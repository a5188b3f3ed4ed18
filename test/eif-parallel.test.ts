// Measuring an EIF with PCR2's hash chain on a worker thread (src/node/worker-sha384.ts) gives the
// same values as one thread and as SHA-384 computed directly from the inputs with node:crypto;
// a worker that dies is noticed and reported, never waited on forever.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEifBytes } from '../src/eif/index.js';
import { measureEifFile } from '../src/node/eif-file.js';
import { RING_SLOTS, RING_SLOT_SIZE, WorkerHashError, workerSha384 } from '../src/node/worker-sha384.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-eif-parallel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const extend = (d: Uint8Array) => sha384(new Uint8Array(48), d);
const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString('hex'));

describe('SHA-384 on a worker thread', () => {
  it('matches node:crypto for pieces of every size, across more bytes than the ring holds', () => {
    const data = new Uint8Array(randomBytes(RING_SLOTS * RING_SLOT_SIZE * 2 + 12345));
    const cuts = [0, 1, 2, 100, RING_SLOT_SIZE - 1, RING_SLOT_SIZE, RING_SLOT_SIZE + 1, 3 * RING_SLOT_SIZE + 7, 65536, 1 << 20];
    const h = workerSha384();
    let o = 0;
    for (let i = 0; o < data.length; i++) {
      const n = Math.min(cuts[i % cuts.length]!, data.length - o);
      h.update(data.subarray(o, o + n));
      o += n;
    }
    expect(hex(h.digest())).toBe(hex(sha384(data)));
  });

  it('hashes nothing as the SHA-384 of the empty string', () => {
    expect(hex(workerSha384().digest())).toBe('38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b');
  });

  it('starts in a process run as `node --input-type=module -e` (the worker does not inherit its flags)', () => {
    // Against the built package (npm test builds dist/ first), in a process of its own.
    const script = `
      const { workerSha384 } = await import(${JSON.stringify(new URL('../dist/node/worker-sha384.js', import.meta.url).href)});
      const h = workerSha384({ startTimeoutMs: 4000 });
      h.update(new TextEncoder().encode('abc'));
      console.log(Buffer.from(h.digest()).toString('hex'));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toBe(hex(sha384(new TextEncoder().encode('abc'))));
  });

  it('a worker that is gone makes update/digest throw WorkerHashError instead of waiting forever', async () => {
    const h = workerSha384({ startTimeoutMs: 200, stallTimeoutMs: 200 });
    h.dispose();
    await new Promise((r) => setTimeout(r, 50));
    const chunk = new Uint8Array(RING_SLOT_SIZE);
    expect(() => {
      for (let i = 0; i <= RING_SLOTS + 1; i++) h.update(chunk);
      h.digest();
    }).toThrow(WorkerHashError);
  });
});

describe('measureEifFile with PCR2 on a worker thread', () => {
  it('gives the PCRs computed directly from the inputs, as the single-thread path does', async () => {
    const kernel = new Uint8Array(randomBytes(300_000));
    const cmdline = 'console=ttyS0 reboot=k';
    const bootstrap = new Uint8Array(randomBytes(200_000));
    // Larger than the ring, with an odd length, so the ring wraps and ends on a partial slot.
    const app = [new Uint8Array(randomBytes(RING_SLOTS * RING_SLOT_SIZE + 777_777)), new Uint8Array(randomBytes(4321))];
    const { bytes } = await buildEifBytes({
      kernel,
      cmdline,
      ramdisks: [bootstrap, ...app],
      metadata: { imageName: 't', imageVersion: '1', buildMetadata: { buildTime: 'x', buildTool: 'x', buildToolVersion: '0', operatingSystem: 'Linux', kernelVersion: '0' }, dockerInfo: null, customMetadata: null },
    });
    const path = join(dir, 'app.eif');
    writeFileSync(path, bytes);
    const cmd = new TextEncoder().encode(cmdline);
    const expected = {
      pcr0: hex(extend(sha384(kernel, cmd, bootstrap, ...app))),
      pcr1: hex(extend(sha384(kernel, cmd, bootstrap))),
      pcr2: hex(extend(sha384(...app))),
    };
    for (const parallel of [true, false]) {
      const m = await measureEifFile(path, { parallel });
      expect({ pcr0: hex(m.pcrs.pcr0), pcr1: hex(m.pcrs.pcr1), pcr2: hex(m.pcrs.pcr2) }).toEqual(expected);
      expect(m.layout.crc.ok).toBe(true);
    }
  });
});

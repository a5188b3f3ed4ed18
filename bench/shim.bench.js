// DescribePCR round trips through the /dev/nsm preload shim and the socket server, driven by a
// C client (test/native/nsm-client.c, the nsm-lib ioctl pattern) looping in its own process.
// Baselines, measured in the same run: the same client through the same shim, socket and
// framing to a bare server that answers every frame with the same response bytes without a
// device (so the ratio is what the device and server add to the transport), and the raw
// in-process API (device.handleRaw) doing the same request.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NsmDevice, encodeRequest } from '../dist/index.js';
import { NsmServer } from '../dist/node/server.js';
import { FrameReader, encodeFrame } from '../dist/node/framing.js';
import { buildShim } from '../dist/node/shim-build.js';
import { shimEnvironment } from '../dist/node/shim-env.js';
import { compare } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Round trips per measured call: one call = one batch run by the C client. */
const BATCH = 200;

/** A C client in bench mode: each batch() makes it do BATCH ioctls and waits for "done". */
function startClient(client, requestHex, env) {
  const child = spawn(client, ['bench', requestHex], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  let buffered = '';
  let waiting = null;
  child.stdout.on('data', (d) => {
    buffered += d;
    if (waiting && buffered.includes('\n')) {
      const line = buffered.slice(0, buffered.indexOf('\n'));
      buffered = buffered.slice(line.length + 1);
      const w = waiting;
      waiting = null;
      if (line === 'done') w.resolve();
      else w.reject(new Error(`bench client: ${line}`));
    }
  });
  child.on('exit', (code) => waiting?.reject(new Error(`bench client exited with ${code}`)));
  return {
    batch() {
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        child.stdin.write(`${BATCH}\n`);
      });
    },
    stop() {
      child.stdin.end();
      return new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** A server with the same framing that answers every request with `response`, no device. */
function echoServer(path, response) {
  const framed = encodeFrame(response);
  const server = createServer((socket) => {
    const reader = new FrameReader();
    socket.on('data', (chunk) => {
      for (const ev of reader.push(chunk)) if (ev.kind !== 'overCap') socket.write(framed);
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

export async function run() {
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.warn('shim bench SKIPPED: no C compiler (cc) to build the shim and the client');
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'nsm-bench-'));
  const client = join(dir, 'nsm-client');
  const cc = spawnSync('cc', ['-O2', '-pthread', '-o', client, join(here, '..', 'test', 'native', 'nsm-client.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  const shim = await buildShim({ cacheDir: join(dir, 'cache') });

  const device = new NsmDevice({ seed: '01' });
  const request = encodeRequest({ type: 'DescribePCR', index: 0 });
  const response = await device.handleRaw(request);
  const server = new NsmServer(device);
  const nsmAddress = await server.listen({ path: join(dir, 'nsm.sock') });
  const echoPath = join(dir, 'echo.sock');
  const echo = await echoServer(echoPath, response);
  const hex = Buffer.from(request).toString('hex');
  const viaShim = startClient(client, hex, shimEnvironment(shim, nsmAddress));
  const viaEcho = startClient(client, hex, shimEnvironment(shim, echoPath));
  const perRoundTrip = (row) => ({
    ...row,
    opsPerSec: row.opsPerSec * BATCH,
    baselineOpsPerSec: row.baselineOpsPerSec * BATCH,
    unit: 'round trips/s',
  });
  try {
    const transport = await compare({
      name: 'DescribePCR: C client, shim, socket, device',
      fn: () => viaShim.batch(),
      baseline: 'same bytes echoed, same shim/socket/framing',
      baselineFn: () => viaEcho.batch(),
      target: 0.5,
    });
    const raw = await compare({
      name: 'DescribePCR: C client, shim, socket, device',
      fn: () => viaShim.batch(),
      baseline: 'raw API device.handleRaw in-process',
      baselineFn: async () => {
        for (let i = 0; i < BATCH; i++) await device.handleRaw(request);
      },
    });
    return [perRoundTrip(transport), perRoundTrip(raw)];
  } finally {
    await viaShim.stop();
    await viaEcho.stop();
    await server.close();
    await new Promise((r) => echo.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}

// DescribePCR round trips through the /dev/nsm preload shim and the socket server, driven by a
// C client (test/native/nsm-client.c, the nsm-lib ioctl pattern) looping in its own process.
// Baselines, measured in the same run: the same client through the same shim, socket and
// framing to a bare server that answers every frame with the same response bytes without a
// device (so the ratio is what the device and server add to the transport), and the raw
// in-process API (device.handleRaw) doing the same request.
// The seccomp supervisor route: the same client and server with the supervisor answering the
// system calls instead of the shim (baseline: the shim), and what the filter costs a program's
// other system calls (an ioctl the filter lets through, an open it reports) against the same
// loop run without the supervisor.
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
import { buildSupervisor, probeSupervisor, supervisorCommand } from '../dist/node/supervisor.js';
import { compare } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Round trips per measured call: one call = one batch run by the C client. */
const BATCH = 200;

/** A C client in bench mode: each batch() makes it do BATCH ioctls and waits for "done". */
function startClient(client, requestHex, env, wrap = (argv) => argv, mode = ['bench', requestHex]) {
  const [file, ...args] = wrap([client, ...mode]);
  const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
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
    return [perRoundTrip(transport), perRoundTrip(raw), ...(await supervisorRows(dir, client, hex, nsmAddress, viaShim, perRoundTrip))];
  } finally {
    await viaShim.stop();
    await viaEcho.stop();
    await server.close();
    await new Promise((r) => echo.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Rows for the seccomp supervisor, or none (with the reason) where this kernel refuses it. */
async function supervisorRows(dir, client, hex, nsmAddress, viaShim, perRoundTrip) {
  const supervisor = await buildSupervisor({ cacheDir: join(dir, 'cache') });
  const probe = await probeSupervisor(supervisor);
  if (!probe.ok) {
    console.warn(`supervisor bench SKIPPED: ${probe.reason}`);
    return [];
  }
  const env = { ...process.env, NSM_EMULATOR_SOCKET: nsmAddress };
  const under = (argv) => supervisorCommand(supervisor, argv);
  const viaSupervisor = startClient(client, hex, env, under);
  const spins = ['ioctl', 'open'].map((what) => [what, startClient(client, hex, env, under, ['spin', what]), startClient(client, hex, env, undefined, ['spin', what])]);
  try {
    const rows = [
      perRoundTrip(
        await compare({
          name: 'DescribePCR: C client, seccomp supervisor, socket, device',
          fn: () => viaSupervisor.batch(),
          baseline: 'same client through the LD_PRELOAD shim',
          baselineFn: () => viaShim.batch(),
          target: 0.5,
        }),
      ),
    ];
    for (const [what, filtered, bare] of spins) {
      const row = await compare({
        name: what === 'ioctl' ? 'other ioctls under the supervisor (FIONREAD on a pipe: filter only)' : 'open+close under the supervisor (every open is reported to it)',
        fn: () => filtered.batch(),
        baseline: 'same loop without the supervisor',
        baselineFn: () => bare.batch(),
        ...(what === 'ioctl' ? { target: 0.5 } : {}),
      });
      rows.push({ ...row, opsPerSec: row.opsPerSec * BATCH, baselineOpsPerSec: row.baselineOpsPerSec * BATCH, unit: 'calls/s' });
    }
    return rows;
  } finally {
    await viaSupervisor.stop();
    for (const [, a, b] of spins) {
      await a.stop();
      await b.stop();
    }
  }
}

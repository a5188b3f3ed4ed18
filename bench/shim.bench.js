// DescribePCR round trips through the /dev/nsm preload shim and the socket server, driven by C
// clients (test/native/nsm-client.c, the nsm-lib ioctl pattern) looping in their own processes,
// with one client and with 4 at once. The floor, measured in the same run with as many clients:
// bare C clients and a C poll() server (bench/native/frame-echo.c) speaking the same framing
// over a Unix socket and answering the same response bytes, with no shim, device or JavaScript.
// The server runs as `serve` and `exec` run it: on the native socket path (native/nsm-sockets.c,
// io 'native'). Two rows (no target) compare it with the same server on Node's net streams
// (io 'node'): 4 clients, and 1 client with both on one CPU.
// Also beside the raw in-process API (device.handleRaw) doing the same request.
// Where the client and the server run decides most of the one-client figure on a small VM: a
// wake-up across CPUs costs far more than one on the same CPU, and the scheduler places each
// pair as it sees fit. Two more one-client rows (no target) pin both pairs alike with taskset
// (this process, which is the server, and the C echo server on one CPU; the clients on the same
// CPU, or on the other one) to show the two cases apart. One more row measures Node's own
// ceiling on this machine: a minimal `net` server in this process answering every frame with
// the constant response (no device, no shim; bare C client), against the C echo server.
// The seccomp supervisor route: the same client and server with the supervisor answering the
// system calls instead of the shim (baseline: the shim), and what the filter costs a program's
// other system calls (an ioctl the filter lets through, an open it reports) against the same
// loop run without the supervisor.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NsmDevice, encodeRequest } from '../dist/index.js';
import { NsmServer } from '../dist/node/server.js';
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

/** Starts the C echo server on `path`; resolves once it listens. */
function startEchoServer(binary, path, responseHex, prefix = []) {
  const child = spawn(binary, [...prefix, 'server', path, responseHex], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`frame-echo server exited with ${code}`)));
  });
}

function compile(out, source) {
  const cc = spawnSync('cc', ['-O2', '-pthread', '-o', out, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  return out;
}

export async function run() {
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.warn('shim bench SKIPPED: no C compiler (cc) to build the shim and the clients');
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'nsm-bench-'));
  const client = compile(join(dir, 'nsm-client'), join(here, '..', 'test', 'native', 'nsm-client.c'));
  const frameEcho = compile(join(dir, 'frame-echo'), join(here, 'native', 'frame-echo.c'));
  const shim = await buildShim({ cacheDir: join(dir, 'cache') });

  const device = new NsmDevice({ seed: '01' });
  const request = encodeRequest({ type: 'DescribePCR', index: 0 });
  const response = await device.handleRaw(request);
  // The server as `serve` and `exec` run it (--io auto: the native socket path), and the same
  // device behind Node's net streams (io 'node', the library's default) for one comparison row.
  const server = new NsmServer(device, { io: 'native', nativeSockets: { cacheDir: join(dir, 'cache') } });
  const nsmAddress = await server.listen({ path: join(dir, 'nsm.sock') });
  const nodeServer = new NsmServer(device, { io: 'node' });
  const nodeAddress = await nodeServer.listen({ path: join(dir, 'nsm-node.sock') });
  const echoPath = join(dir, 'echo.sock');
  const echo = await startEchoServer(frameEcho, echoPath, Buffer.from(response).toString('hex'));
  const hex = Buffer.from(request).toString('hex');
  const started = [];
  const clients = (n, make) => {
    const list = Array.from({ length: n }, make);
    started.push(...list);
    return list;
  };
  const perRoundTrip = (row, clientCount = 1) => ({
    ...row,
    opsPerSec: row.opsPerSec * BATCH * clientCount,
    baselineOpsPerSec: row.baselineOpsPerSec * BATCH * clientCount,
    unit: 'round trips/s',
    clients: clientCount,
  });
  try {
    const rows = [];
    for (const [n, target] of [[1, 0.8], [4, 0.7]]) {
      const viaShim = clients(n, () => startClient(client, hex, shimEnvironment(shim, nsmAddress)));
      const bare = clients(n, () => startClient(frameEcho, hex, process.env, undefined, ['client', echoPath, hex]));
      const row = await compare({
        name: `DescribePCR: ${n} C client${n > 1 ? 's' : ''}, shim, socket server, device`,
        fn: () => Promise.all(viaShim.map((c) => c.batch())),
        baseline: `bare C client${n > 1 ? 's' : ''} + C poll() echo server, same framing`,
        baselineFn: () => Promise.all(bare.map((c) => c.batch())),
        target,
      });
      rows.push(perRoundTrip(row, n));
    }
    const native4 = clients(4, () => startClient(client, hex, shimEnvironment(shim, nsmAddress)));
    const node4 = clients(4, () => startClient(client, hex, shimEnvironment(shim, nodeAddress)));
    rows.push(
      perRoundTrip(
        await compare({
          name: 'DescribePCR: 4 C clients, shim, socket server on the native socket path (io native)',
          fn: () => Promise.all(native4.map((c) => c.batch())),
          baseline: "the same server on Node's net streams (io node)",
          baselineFn: () => Promise.all(node4.map((c) => c.batch())),
        }),
        4,
      ),
    );
    const [viaShim] = clients(1, () => startClient(client, hex, shimEnvironment(shim, nsmAddress)));
    const raw = await compare({
      name: 'DescribePCR: 1 C client, shim, socket server, device',
      fn: () => viaShim.batch(),
      baseline: 'raw API device.handleRaw in-process',
      baselineFn: async () => {
        for (let i = 0; i < BATCH; i++) await device.handleRaw(request);
      },
    });
    rows.push(perRoundTrip(raw), perRoundTrip(await nodeCeilingRow(dir, frameEcho, hex, response, echoPath, clients)));
    rows.push(...(await placementRows(dir, client, frameEcho, hex, response, shim, nsmAddress, nodeAddress, clients, perRoundTrip)));
    rows.push(...(await supervisorRows(dir, client, hex, nsmAddress, viaShim, perRoundTrip)));
    return rows;
  } finally {
    await Promise.all(started.map((c) => c.stop()));
    echo.kill();
    await server.close();
    await nodeServer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Node's own ceiling: a minimal net server answering each frame with `response`, vs the C server. */
async function nodeCeilingRow(dir, frameEcho, hex, response, echoPath, clients) {
  const frame = Buffer.alloc(4 + response.length);
  frame.writeUInt32BE(response.length);
  frame.set(response, 4);
  const server = createServer((s) => {
    let header = Buffer.alloc(0); // the current frame's header bytes so far
    let body = -1; // body bytes of the current frame still to come (-1: reading the header)
    s.on('data', (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        if (body < 0) {
          const take = Math.min(4 - header.length, chunk.length - at);
          header = Buffer.concat([header, chunk.subarray(at, at + take)]);
          at += take;
          if (header.length < 4) return;
          body = header.readUInt32BE(0);
          header = Buffer.alloc(0);
        }
        const take = Math.min(body, chunk.length - at);
        at += take;
        body -= take;
        if (body === 0) {
          s.write(frame);
          body = -1;
        }
      }
    });
  });
  const path = join(dir, 'node-echo.sock');
  await new Promise((resolve) => server.listen(path, resolve));
  try {
    const [viaNode] = clients(1, () => startClient(frameEcho, hex, process.env, undefined, ['client', path, hex]));
    const [bare] = clients(1, () => startClient(frameEcho, hex, process.env, undefined, ['client', echoPath, hex]));
    return await compare({
      name: "Node's ceiling: 1 bare C client, minimal Node net server (constant answer, no device, no shim)",
      fn: () => viaNode.batch(),
      baseline: 'bare C client + C poll() echo server',
      baselineFn: () => bare.batch(),
    });
  } finally {
    server.close();
  }
}

/** The CPUs this process may run on, as taskset prints them (e.g. "0,1"), or null. */
function affinity() {
  const r = spawnSync('taskset', ['-p', '-c', String(process.pid)], { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split(':').pop()?.trim() ?? null) : null;
}

/** Pins every thread of this process to `cpus`. */
function pinSelf(cpus) {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset: ${r.stderr.trim()}`);
}

/** One-client rows with both pairs pinned alike: server CPU 0; clients on CPU 0, then on CPU 1. */
async function placementRows(dir, client, frameEcho, hex, response, shim, nsmAddress, nodeAddress, clients, perRoundTrip) {
  const all = affinity();
  if (availableParallelism() < 2 || all === null) {
    console.warn(`shim bench: placement rows SKIPPED: ${all === null ? 'taskset (util-linux) is not available' : 'one CPU only'}`);
    return [];
  }
  const rows = [];
  const echoPath = join(dir, 'echo-pinned.sock');
  const echo = await startEchoServer('taskset', echoPath, Buffer.from(response).toString('hex'), ['-c', '0', frameEcho]);
  try {
    pinSelf('0');
    for (const [where, cpu] of [['same CPU', '0'], ['different CPUs', '1']]) {
      const on = (argv) => ['taskset', '-c', cpu, ...argv];
      const [viaShim] = clients(1, () => startClient(client, hex, shimEnvironment(shim, nsmAddress), on));
      const [bare] = clients(1, () => startClient(frameEcho, hex, process.env, on, ['client', echoPath, hex]));
      const row = await compare({
        name: `DescribePCR: 1 C client, shim, socket server, device; client and server on the ${where}`,
        fn: () => viaShim.batch(),
        baseline: `bare C client + C poll() echo server, on the ${where}`,
        baselineFn: () => bare.batch(),
      });
      rows.push(perRoundTrip(row));
      if (where === 'same CPU') {
        const [viaNode] = clients(1, () => startClient(client, hex, shimEnvironment(shim, nodeAddress), on));
        const paths = await compare({
          name: 'DescribePCR: 1 C client, shim, native socket path (io native); client and server on the same CPU',
          fn: () => viaShim.batch(),
          baseline: "the same server on Node's net streams (io node), on the same CPU",
          baselineFn: () => viaNode.batch(),
        });
        rows.push(perRoundTrip(paths));
      }
    }
  } finally {
    pinSelf(all);
    echo.kill();
  }
  return rows;
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

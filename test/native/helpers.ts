/**
 * Shared by the server, shim and exec tests: tool detection with a visible reason, building the
 * C test client, an in-process server in a private temp dir, and running a child process
 * asynchronously (the server lives in this event loop) with a hard timeout.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NsmDevice, type NsmDeviceOptions } from '../../src/device/nsm-device.js';
import { NsmServer, type NsmServerOptions } from '../../src/node/server.js';
import { encodeRequest } from '../../src/wire/encode-request.js';
import { buildShim } from '../../src/node/shim-build.js';
import { findNodeHeaders, nodeHeaderDirs } from '../../src/node/native-socket.js';

export const NATIVE_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * What the Linux nsm driver answers to `nsm-client errors` and `nsm-client faults`
 * (driver-errno.json): the shim and the supervisor tests expect these lines, and test:vm checks
 * the same lines against the real driver in a guest kernel.
 */
export const DRIVER_ERRNO: {
  readonly errors: readonly string[];
  readonly errorsExchanges: number;
  readonly faults: readonly string[];
  readonly faultsExchanges: number;
} = JSON.parse(readFileSync(join(NATIVE_DIR, 'driver-errno.json'), 'utf8'));

/**
 * Runs `nsm-client errors` or `nsm-client faults` (through `run`, given the address of a fresh
 * server that counts what reaches its device) and returns the client's lines, its stderr, and
 * how many requests the device received: compared with {@link DRIVER_ERRNO} by the shim and
 * supervisor tests.
 */
export async function runDriverMode(
  dir: string,
  mode: 'errors' | 'faults',
  run: (address: string) => Promise<{ stdout: string; stderr: string }>,
): Promise<{ lines: string[]; stderr: string; exchanges: number }> {
  let exchanges = 0;
  const counting = await startServer(dir, new NsmDevice(twinOptions()), { onExchange: () => exchanges++ }, `${mode}.sock`);
  try {
    const got = await run(counting.address);
    return { lines: got.stdout.trim().split('\n'), stderr: got.stderr, exchanges };
  } finally {
    await counting.stop();
  }
}

/** Whether `cmd --version` (or `cmd ...args`) runs; when it does not, prints why the tests needing it are skipped. */
export function haveTool(cmd: string, needs: string, args: readonly string[] = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  const ok = r.status === 0;
  if (!ok) {
    console.warn(`\n*** SKIPPED: ${needs} need '${cmd}', which is not installed here (.ci/run must install it). ***\n`);
  }
  return ok;
}

/**
 * The ways of serving connections (NsmServer's `io`) this machine can test: Node's streams always,
 * and the native socket path when there is a C compiler and Node's C headers to build it. When
 * there are not, the reason is printed and only 'node' is returned.
 */
export function serverIoModes(needs: string): Array<'node' | 'native'> {
  let why: string | null = null;
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).status !== 0) why = "there is no C compiler ('cc')";
  else if (findNodeHeaders() === undefined) {
    why = `Node's C headers (node_api.h, uv.h) are not in ${nodeHeaderDirs().join(', ')}`;
  }
  if (why === null) return ['node', 'native'];
  console.warn(`\n*** SKIPPED: ${needs} on the native socket path: ${why}. ***\n`);
  return ['node'];
}

/** A private temporary directory, removed by the returned function. */
export function tempDir(prefix = 'nsm-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion without blocking the event loop; kills it after `timeoutMs`. */
export function runChild(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Compiles test/native/nsm-client.c into `dir`: dynamically linked with cc by default, or as
 * `variant` 'static' (gcc -static, glibc) or 'musl' (musl-gcc -static).
 */
export function compileClient(dir: string, variant: 'dynamic' | 'static' | 'musl' = 'dynamic'): string {
  const out = join(dir, variant === 'dynamic' ? 'nsm-client' : `nsm-client-${variant}`);
  const cc = variant === 'musl' ? 'musl-gcc' : 'cc';
  const link = variant === 'dynamic' ? [] : ['-static'];
  const r = spawnSync(cc, ['-O2', '-Wall', '-pthread', ...link, '-o', out, join(NATIVE_DIR, 'nsm-client.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling nsm-client.c (${variant}) failed:\n${r.stderr}`);
  return out;
}

const builtGo = new Set<string>();

/**
 * Builds test/native/nsm-client.go into `dir` as a static binary (CGO_ENABLED=0), offline: the
 * module proxy is off and the build cache lives in `dir`. Built once per `dir`.
 */
export function compileGoClient(dir: string): string {
  const out = join(dir, 'nsm-client-go');
  if (builtGo.has(out)) return out;
  const env = {
    ...process.env,
    CGO_ENABLED: '0',
    GO111MODULE: 'off',
    GOPROXY: 'off',
    GOFLAGS: '',
    GOCACHE: join(dir, 'go-cache'),
    GOPATH: join(dir, 'go-path'),
  };
  const r = spawnSync('go', ['build', '-o', out, join(NATIVE_DIR, 'nsm-client.go')], { encoding: 'utf8', env, cwd: dir });
  if (r.status !== 0) throw new Error(`go build nsm-client.go failed:\n${r.stderr}`);
  builtGo.add(out);
  return out;
}

/** Whether an ELF file asks for a dynamic loader (has a PT_INTERP program header). */
export function isDynamicElf(file: string): boolean {
  const b = readFileSync(file);
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/** Builds the shim into a cache inside `dir`. */
export function buildTestShim(dir: string): Promise<string> {
  return buildShim({ cacheDir: join(dir, 'cache') });
}

/** Options for two devices that behave identically (fixed seed and clock). */
export function twinOptions(extra: Partial<NsmDeviceOptions> = {}): NsmDeviceOptions {
  return { seed: '5eed', clock: () => 1_767_225_600_000, moduleId: 'i-0123456789abcdef0-enc0123456789abcdef', ...extra };
}

export interface RunningServer {
  server: NsmServer;
  device: NsmDevice;
  path: string;
  address: string;
  stop: () => Promise<void>;
}

/** An NsmServer on a Unix socket in `dir`. */
export async function startServer(dir: string, device = new NsmDevice(twinOptions()), options: NsmServerOptions = {}, name = 'nsm.sock'): Promise<RunningServer> {
  const server = new NsmServer(device, options);
  const path = join(dir, name);
  const address = await server.listen({ path });
  return { server, device, path, address, stop: () => server.close() };
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function unhex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/**
 * The "server killed mid-run" scenario both native routes are tested with: a separate server
 * process answers the first DescribePCR(0); once the client (`command`, run as the C client's
 * `wait` mode) prints `ready`, the server is SIGKILLed and the client told to go on. Resolves
 * with the client's output, exit code and how long it took.
 */
export async function runWithServerKilled(
  sock: string,
  command: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ out: string; code: number | null; elapsedMs: number }> {
  const answer = hex(await new NsmDevice(twinOptions()).handleRaw(encodeRequest({ type: 'DescribePCR', index: 0 })));
  const server = spawn(process.execPath, [join(NATIVE_DIR, 'frame-server.mjs'), sock, answer], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
    const c = spawn(command[0]!, command.slice(1), { env, stdio: 'pipe' });
    let out = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ready\n') && server.exitCode === null && server.signalCode === null) {
        server.once('exit', () => c.stdin.end('go\n'));
        server.kill('SIGKILL');
      }
    });
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => c.on('close', resolve));
    return { out, code, elapsedMs: Date.now() - started };
  } finally {
    server.kill('SIGKILL');
  }
}

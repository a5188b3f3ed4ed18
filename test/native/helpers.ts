/**
 * Shared by the server, shim and exec tests: tool detection with a visible reason, building the
 * C test client, an in-process server in a private temp dir, and running a child process
 * asynchronously (the server lives in this event loop) with a hard timeout.
 * @module
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NsmDevice, type NsmDeviceOptions } from '../../src/device/nsm-device.js';
import { NsmServer, type NsmServerOptions } from '../../src/node/server.js';
import { buildShim } from '../../src/node/shim-build.js';

export const NATIVE_DIR = dirname(fileURLToPath(import.meta.url));

/** Whether `cmd --version` runs; when it does not, prints why the tests needing it are skipped. */
export function haveTool(cmd: string, needs: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  const ok = r.status === 0;
  if (!ok) {
    console.warn(`\n*** SKIPPED: ${needs} need '${cmd}', which is not installed here (.ci/run must install it). ***\n`);
  }
  return ok;
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

/** Compiles test/native/nsm-client.c into `dir`. */
export function compileClient(dir: string): string {
  const out = join(dir, 'nsm-client');
  const r = spawnSync('cc', ['-O2', '-Wall', '-pthread', '-o', out, join(NATIVE_DIR, 'nsm-client.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`compiling nsm-client.c failed:\n${r.stderr}`);
  return out;
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

/** Runs the CLI in-process with string streams, or as a real process from bin/. */
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * In-process streams for a command: what it wrote so far can be read at any time, so long-lived
 * commands (serve, exec) can be watched while they run. With `stdin` given, standard input
 * holds that text and is then closed; without it, it stays open.
 */
export function liveIo(stdin?: string) {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  let out = '';
  let err = '';
  io.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  io.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  if (stdin !== undefined) io.stdin.end(stdin);
  return { io, out: () => out, err: () => err };
}

export async function runCli(argv: string[], stdin = ''): Promise<CliResult> {
  const t = liveIo(stdin);
  const code = await main(argv, t.io);
  return { code, stdout: t.out(), stderr: t.err() };
}

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const binPath = fileURLToPath(new URL('../../bin/nsm-emulator.js', import.meta.url));

/** Spawns `node bin/nsm-emulator.js ...` (dist/ must be built: `npm test` builds it first). */
export function spawnCli(argv: string[], stdin = '', timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...argv], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nsm-emulator ${argv.join(' ')} timed out`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

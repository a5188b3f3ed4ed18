/** A long-running CLI process whose output lines can be awaited (for `inspect`). */
import { spawn } from 'node:child_process';
import { binPath, repoRoot } from './cli.js';

export function spawnCliLive(argv: string[]) {
  const child = spawn(process.execPath, [binPath, ...argv], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(kill));
  return {
    /** Resolves with the first n lines of standard output (rejects if the process ends first). */
    async lines(n: number): Promise<string[]> {
      for (;;) {
        const got = out.split('\n');
        if (got.length > n) return got.slice(0, n);
        const more = new Promise<void>((r) => waiters.push(r));
        const ended = await Promise.race([more.then(() => false), exited.then(() => true)]);
        if (ended && out.split('\n').length <= n) throw new Error(`exited before ${n} lines: ${err}`);
      }
    },
    stderr: () => err,
    exit: () => exited,
    /** SIGTERM, then the exit code. */
    async stop(): Promise<number> {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

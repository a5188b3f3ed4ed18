// The top-level command: help lists --version and -V, and both print package.json's version.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

it('--version and -V print the version in package.json', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`nsm-emulator ${pkg.version}\n`);
  }
});

it('the top-level help lists -V, --version and -h, --help', async () => {
  const r = await runCli(['--help']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^ {2}-V, --version +print the version$/m);
  expect(r.stdout).toMatch(/^ {2}-h, --help +this list$/m);
});

it('no command help has an empty heading (an unindented line ending in ":" followed directly by another unindented line)', async () => {
  const top = await runCli(['--help']);
  const names = [...top.stdout.matchAll(/^ {2}([a-z][a-z-]+) {2,}/gm)].map((m) => m[1]!);
  expect(names).toEqual(expect.arrayContaining(['attest', 'rpc', 'verify', 'describe-eif', 'kms']));
  for (const name of names) {
    const lines = (await runCli([name, '--help'])).stdout.split('\n');
    const empty = lines.flatMap((l, i) => (/^\S.*:$/.test(l) && /^\S/.test(lines[i + 1] ?? ' ') ? [`${l} / ${lines[i + 1]}`] : []));
    expect(empty, `${name} --help`).toEqual([]);
  }
});

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

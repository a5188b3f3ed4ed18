// The layer rules from the engineering standards, checked on the import statements of src/:
// the core (everything outside src/node and src/cli) uses no Node-only module and never imports
// src/node or src/cli; src/node never imports src/cli.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const SRC = resolve(__dirname, '../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Every module specifier a file imports, statically or with import(). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)) out.push((m[1] ?? m[2])!);
  return out;
}

function layerOf(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

it('the import scanner sees static and dynamic imports (so the rules below can fail)', () => {
  const bootOptions = imports(join(SRC, 'cli/boot-options.ts'));
  expect(bootOptions).toContain('../device/nsm-device.js');
  expect(bootOptions).toContain('../node/eif-boot.js');
});

it('src/node never imports src/cli, and the core never imports src/node, src/cli or node: modules', () => {
  const broken: string[] = [];
  for (const file of files(SRC)) {
    const layer = layerOf(file);
    if (layer === 'cli') continue;
    for (const spec of imports(file)) {
      const target = spec.startsWith('.') ? layerOf(resolve(file, '..', spec)) : null;
      const rel = relative(SRC, file);
      if (target === 'cli') broken.push(`${rel} imports ${spec}`);
      if (layer !== 'node' && target === 'node') broken.push(`${rel} imports ${spec}`);
      if (layer !== 'node' && spec.startsWith('node:')) broken.push(`${rel} imports ${spec}`);
    }
  }
  expect(broken).toEqual([]);
});

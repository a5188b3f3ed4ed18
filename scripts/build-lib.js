#!/usr/bin/env node
// A step of `npm run build`, after tsc: bundles the package's two entry points, `nsm-emulator`
// (dist/index.js) and `nsm-emulator/node` (dist/node/index.js), as tsc wrote them, into
// dist/bundle/index.js and dist/bundle/node.js: ES modules that share their common code through
// chunks (dist/bundle/chunk-*.js), so a class has one identity whichever entry a program imports
// it from. package.json's exports point at these; the declarations stay tsc's (dist/**/*.d.ts).
//
// Why: importing the library module by module made Node's ESM loader resolve, read and link
// about a hundred files, most of the cost of `import('nsm-emulator')`; the bundle is a handful.
// @noble/hashes (small, needed by every import) is bundled in (its MIT notice is kept in the
// output); @noble/curves stays an ordinary dependency, loaded by dynamic import only when pure-JS
// ECDSA is used. Source maps are chained through tsc's, so they point at src/*.ts with the
// sources inlined. Everything stays side-effect free (package.json "sideEffects": false), so a
// consumer's bundler still drops what it does not use.
//
// Without esbuild (a devDependency) the two files are one-line re-exports of the per-file build,
// so the package works the same, only slower to import.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const outdir = join(dist, 'bundle');
const entries = { index: join(dist, 'index.js'), node: join(dist, 'node', 'index.js') };

rmSync(outdir, { recursive: true, force: true });

let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  process.stderr.write(`build-lib: esbuild (a devDependency) is not installed (${e.code ?? e.message}); dist/bundle/ re-exports the per-file build\n`);
  mkdirSync(outdir, { recursive: true });
  writeFileSync(join(outdir, 'index.js'), "export * from '../index.js';\n");
  writeFileSync(join(outdir, 'node.js'), "export * from '../node/index.js';\n");
  process.exit(0);
}

await build({
  entryPoints: entries,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  // 'node' only for how node: specifiers and package exports resolve; the core entry and the
  // chunks it loads contain no Node-only code (test/layering.test.ts checks the sources).
  platform: 'node',
  target: 'node20',
  external: ['@noble/curves', '@noble/curves/*'],
  sourcemap: true,
  // Whitespace and comments out (names kept): less for Node to read and scan on import.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'inline',
  // @noble/hashes' files carry no notice of their own; its LICENSE ships with the dependency.
  banner: { js: '/*! nsm-emulator (Apache-2.0). Includes @noble/hashes (MIT License, Copyright (c) 2022 Paul Miller, https://paulmillr.com). */' },
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
});

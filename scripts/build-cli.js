#!/usr/bin/env node
// The last step of `npm run build`: bundles the CLI (dist/cli/main.js, as tsc wrote it, and
// everything it loads) into one CommonJS file, dist/cli/nsm-emulator.cjs, and writes a V8 code
// cache for it, dist/cli/nsm-emulator.cjs.v8cache. bin/nsm-emulator.js runs the bundle with that
// cache: one file to read and little to compile is most of what makes a command start fast
// (Node 20 has no compile cache of its own for modules). The cache is made after running
// `--help` (which loads every command) and a few common commands against output sinks, so the
// functions they use are compiled already; V8 rejects it when its version or flags differ, and
// the bundle is then simply compiled. The library itself stays one module per
// file in dist/ (the package's exports); only the CLI is bundled.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'cli', 'nsm-emulator.cjs');

let build;
try {
  ({ build } = await import('esbuild'));
} catch (e) {
  // Without the bundle the CLI runs dist/cli/main.js module by module: slower to start, same behaviour.
  process.stderr.write(`build-cli: esbuild (a devDependency) is not installed (${e.code ?? e.message}); the CLI is not bundled\n`);
  rmSync(out, { force: true });
  rmSync(`${out}.v8cache`, { force: true });
  process.exit(0);
}

await build({
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The one use of import.meta (finding native/ from dist/node/) sees the bundle's own URL;
  // dist/cli/ is as deep as dist/node/, so the relative path still holds.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  legalComments: 'none',
  // Whitespace, comments and redundant syntax out (names are kept): a third less source to read
  // and scan on every start. NSM_EMULATOR_DEBUG=1 runs the per-file build instead
  // (bin/nsm-emulator.js), whose stack traces name dist/ files and lines.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});

// Warm and save the code cache.
const source = readFileSync(out, 'utf8');
const script = new vm.Script(wrapCommonJs(source), { filename: out });
const module = { exports: {} };
script.runInThisContext()(module.exports, createRequire(pathToFileURL(out)), module, out, dirname(out));
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
const io = (input = '') => ({ stdin: Readable.from([input]), stdout: sink(), stderr: sink() });
const { main } = module.exports;
await main(['--help'], io());
// Common commands once each, so the functions they run are in the cache too (output discarded).
await main(['attest', '--nonce', '00'], io());
await main(['rpc'], io('6b44657363726962654e534d\n'));
await main(['pcr', '--parent-id', 'i-1234567890abcdef0'], io());
rmSync(`${out}.v8cache`, { force: true });
writeFileSync(`${out}.v8cache`, script.createCachedData());

/** The function wrapper bin/nsm-emulator.js compiles the bundle with (a cache is valid for one exact source). */
function wrapCommonJs(code) {
  return `(function (exports, require, module, __filename, __dirname) {${code}\n})`;
}

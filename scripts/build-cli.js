#!/usr/bin/env node
// The last step of `npm run build`: bundles the CLI (dist/cli/main.js, as tsc wrote it, and
// everything it loads) into one CommonJS file, dist/cli/nsm-emulator.cjs, and writes a V8 code
// cache for it, dist/cli/nsm-emulator.cjs.v8cache; likewise one bundle per frequent command in
// dist/cli/commands/. bin/nsm-emulator.js runs the bundle with that
// cache: one file to read and little to compile is most of what makes a command start fast
// (@noble/curves and EIF booting, which most starts never use, are bundles of their own,
// dist/cli/nist-curves.cjs and dist/cli/eif-boot.cjs, with their own code caches, loaded by the
// bundles when first used; see chunk() below)
// (Node 20 has no compile cache of its own for modules). The cache is made after running
// `--help` (which loads every command) and a few common commands against output sinks, so the
// functions they use are compiled already; V8 rejects it when its version or flags differ, and
// the bundle is then simply compiled. The library itself stays one module per
// file in dist/ (the package's exports); only the CLI is bundled.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  rmSync(join(root, 'dist', 'cli', 'commands'), { recursive: true, force: true });
  for (const name of ['nist-curves', 'eif-boot']) {
    rmSync(join(root, 'dist', 'cli', `${name}.cjs`), { force: true });
    rmSync(join(root, 'dist', 'cli', `${name}.cjs.v8cache`), { force: true });
  }
  process.exit(0);
}

// The commands people start most often also get a bundle of their own,
// dist/cli/commands/<name>.cjs: only that command's code, so there is less to read and
// deserialize (bin/nsm-emulator.js picks it when it is current). Every other command, the help
// and --version run from the full bundle.
const FAST_COMMANDS = ['attest', 'rpc', 'verify', 'describe-eif', 'pcr'];
const commandsDir = join(root, 'dist', 'cli', 'commands');
rmSync(commandsDir, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The one use of import.meta (finding native/ from dist/node/) sees the bundle's own URL;
  // dist/cli/ is as deep as dist/node/, so the relative path still holds (and dist/cli/commands/
  // is given its own depth below).
  define: { 'import.meta.url': '__bundle.url' },
  legalComments: 'none',
  // Whitespace, comments and redundant syntax out (names are kept): a third less source to read
  // and scan on every start. NSM_EMULATOR_DEBUG=1 runs the per-file build instead
  // (bin/nsm-emulator.js), whose stack traces name dist/ files and lines.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};
// Code most starts never run is bundled apart, each part in dist/cli/<name>.cjs with a code
// cache of its own, and the import that reaches it becomes a load of that file (with its cache,
// as bin/nsm-emulator.js loads a bundle), made only when that import runs, so every other start
// reads and deserializes less:
// - nist-curves: @noble/curves (a third of a command's bundle), used only for pure-JS ECDSA
//   (seeded signing, a CA key file without its public key): src/x509/nist-curves.ts's
//   import('@noble/curves/nist.js');
// - eif-boot: booting from an EIF or parent options (--eif, --parent-*, --debug), the EIF
//   reader, measurement and worker: src/cli/boot-options.ts's import('../node/eif-boot.js').
// A part has its own copies of the modules it shares with a bundle; what crosses between them
// is plain data and the part's own classes (EifBootError), so no instanceof check is affected.
const chunkFile = (name) => join(root, 'dist', 'cli', `${name}.cjs`);
const chunk = (name, filter, up) => ({
  name: `${name}-chunk`,
  setup(b) {
    b.onResolve({ filter }, () => ({ path: name, namespace: `${name}-chunk` }));
    b.onLoad({ filter: /.*/, namespace: `${name}-chunk` }, () => ({
      loader: 'js',
      contents: `const { readFileSync } = require('node:fs');
const file = require('node:path').join(__dirname, ${JSON.stringify(up)}, ${JSON.stringify(`${name}.cjs`)});
let cachedData;
try {
  cachedData = readFileSync(file + '.v8cache');
} catch {}
const code = '(function (exports, require, module, __filename, __dirname) {' + readFileSync(file, 'utf8') + '\\n})';
const script = new (require('node:vm').Script)(code, { filename: file, cachedData });
const m = { exports: {} };
script.runInThisContext()(m.exports, require, m, file, require('node:path').dirname(file));
module.exports = m.exports;
`,
    }));
  },
});
const nistChunk = (up) => chunk('nist-curves', /^@noble\/curves\/nist\.js$/, up);
const eifBootChunk = (up) => chunk('eif-boot', /\/node\/eif-boot\.js$/, up);
await build({
  ...common,
  stdin: { contents: "export * from '@noble/curves/nist.js';\n", resolveDir: root, sourcefile: 'nist-curves-entry.js' },
  outfile: chunkFile('nist-curves'),
});

const banner = (up) => ({
  // A getter: the URL is made only where import.meta.url is read (not on every start).
  js: `'use strict';\nconst __bundle = { get url() { return require('node:url').pathToFileURL(require('node:path').join(__dirname, ${JSON.stringify(up)}, '__bundle.js')).href; } };`,
});

await build({ ...common, entryPoints: [join(root, 'dist', 'node', 'eif-boot.js')], outfile: chunkFile('eif-boot'), banner: banner('.'), plugins: [nistChunk('.')] });
await build({ ...common, entryPoints: [join(root, 'dist', 'cli', 'main.js')], outfile: out, banner: banner('.'), plugins: [nistChunk('.'), eifBootChunk('.')] });
for (const name of FAST_COMMANDS) {
  await build({
    ...common,
    stdin: {
      contents:
        `import { command } from './${name}.js';\nimport { runCommand } from './run-command.js';\nimport { processIo } from './io.js';\n` +
        'export function main(argv, io = processIo()) { return runCommand(argv[0], command, argv.slice(1), io); }\n',
      resolveDir: join(root, 'dist', 'cli'),
      sourcefile: `${name}-entry.js`,
    },
    outfile: join(commandsDir, `${name}.cjs`),
    banner: banner('..'),
    plugins: [nistChunk('..'), eifBootChunk('..')],
  });
}

// Warm and save the code caches, running the commands against output sinks, with the
// certificate cache in a temporary directory (a build writes nothing outside dist/; attest runs
// twice, so both the cache's write and its read are compiled).
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
const io = (input = '') => ({ stdin: Readable.from([input]), stdout: sink(), stderr: sink() });
const work = mkdtempSync(join(tmpdir(), 'nsm-build-cli-'));
process.env.NSM_EMULATOR_CHAIN_CACHE = join(work, 'chain');
try {
  const doc = join(work, 'doc.cbor');
  const eif = join(root, 'vectors', 'eif', 'synthetic', 'v4_signed.eif');
  const runs = {
    attest: [['attest', '--nonce', '00'], ['attest', '--nonce', '00', '--out', doc]],
    rpc: [['rpc']],
    verify: [['verify', doc, '--root', 'test']],
    'describe-eif': existsSync(eif) ? [['describe-eif', '--eif-path', eif]] : [['describe-eif', '--help']],
    pcr: [['pcr', '--parent-id', 'i-1234567890abcdef0']],
  };
  // The parts first (a bundle's warm run may load them, cache and all): a signature on each
  // curve; a boot from the signed vector and from parent options.
  await warmChunk('nist-curves', ({ p256, p384, p521 }) => {
    for (const curve of [p256, p384, p521]) {
      const secret = curve.utils.randomSecretKey();
      const message = new Uint8Array(64);
      curve.verify(curve.sign(message, secret, { lowS: false }), message, curve.getPublicKey(secret, false), { lowS: false });
    }
  });
  await warmChunk('eif-boot', async ({ eifBootOptions }) => {
    if (existsSync(eif)) await eifBootOptions({ eifPath: eif, debug: false });
    await eifBootOptions({ parentInstanceId: 'i-1234567890abcdef0', debug: false });
  });
  // The full bundle: --help (which loads every command) and the common commands once each.
  await warm(out, [['--help'], ...runs.attest, ...runs.rpc, ...runs.pcr]);
  for (const name of FAST_COMMANDS) await warm(join(commandsDir, `${name}.cjs`), runs[name]);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** Runs a part (see chunk()) as a bundle's load of it would, calls `use` with its exports, then writes its code cache. */
async function warmChunk(name, use) {
  const file = chunkFile(name);
  const script = new vm.Script(wrapCommonJs(readFileSync(file, 'utf8')), { filename: file });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(pathToFileURL(file)), module, file, dirname(file));
  await use(module.exports);
  rmSync(`${file}.v8cache`, { force: true });
  writeFileSync(`${file}.v8cache`, script.createCachedData());
}

/** Runs `file`'s main with each argument list, then writes its code cache beside it. */
async function warm(file, runList) {
  const source = readFileSync(file, 'utf8');
  const script = new vm.Script(wrapCommonJs(source), { filename: file });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(pathToFileURL(file)), module, file, dirname(file));
  for (const argv of runList) await module.exports.main(argv, io(argv[0] === 'rpc' ? '6b44657363726962654e534d\n' : ''));
  rmSync(`${file}.v8cache`, { force: true });
  writeFileSync(`${file}.v8cache`, script.createCachedData());
}

/** The function wrapper bin/nsm-emulator.js compiles a bundle with (a cache is valid for one exact source). */
function wrapCommonJs(code) {
  return `(function (exports, require, module, __filename, __dirname) {${code}\n})`;
}

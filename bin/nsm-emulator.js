#!/usr/bin/env node
// Launcher for the nsm-emulator CLI. In a published package dist/ is present and is run as is.
// In a source checkout, dist/ is (re)built with the project's own TypeScript (and the CLI
// bundle with its esbuild, when installed) when it is missing or older than src/, so
// `npx nsm-emulator` works right after `npm install` with no build step.
//
// The CLI runs from dist/cli/nsm-emulator.cjs, the bundle `npm run build` makes (or, for the most
// used commands, the command's own smaller bundle in dist/cli/commands/), compiled with its V8
// code cache (see scripts/build-cli.js), so a command starts nearly as fast as Node itself;
// without a current bundle (or with NSM_EMULATOR_DEBUG set) it runs dist/cli/main.js module by
// module. This file is CommonJS (bin/package.json) because a CommonJS entry point starts a few
// milliseconds sooner.
'use strict';
const { existsSync, readFileSync, readdirSync, statSync } = require('node:fs');
const { dirname, join } = require('node:path');
const { pathToFileURL } = require('node:url');

const root = join(__dirname, '..');
const entry = join(root, 'dist', 'cli', 'main.js');
const bundle = join(root, 'dist', 'cli', 'nsm-emulator.cjs');
const srcDir = join(root, 'src');

// Plain string paths: path.join costs more here than the stat calls themselves, and this walk
// runs on every command started from a source checkout.
function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    const t = e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

function build(args) {
  const r = require('node:child_process').spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write('nsm-emulator: building dist/ from src/ failed (see above)\n');
    process.exit(1);
  }
}

if (existsSync(srcDir)) {
  const stale = !existsSync(entry) || newestMtime(srcDir) > statSync(entry).mtimeMs;
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (stale && existsSync(tsc)) {
    build([tsc, '-p', join(root, 'tsconfig.build.json')]);
    build([join(root, 'scripts', 'build-lib.js')]);
    build([join(root, 'scripts', 'build-cli.js')]);
  }
}

if (!existsSync(entry)) {
  // Installed from git with install scripts disabled: npm did not run `prepare`, which builds dist/.
  process.stderr.write(
    `nsm-emulator: ${entry} is missing: this copy was installed without its build step (the package's ` +
      "'prepare' script). Reinstall with scripts allowed (npm 11: 'npm install-scripts approve nsm-emulator'), " +
      "or run 'npm run build' in the package directory.\n",
  );
  process.exit(1);
}

/**
 * The main of the bundle to run: the command's own bundle (dist/cli/commands/<name>.cjs, made
 * for the most used commands) or the full one, when at least as new as the per-file build; else null.
 */
function bundledMain() {
  // Debugging: the per-file build, whose stack traces name dist/ files and lines (the bundles are minified).
  if (process.env.NSM_EMULATOR_DEBUG) return null;
  const built = statSync(entry).mtimeMs;
  const name = process.argv[2];
  const own = name !== undefined && /^[a-z][a-z-]*$/.test(name) ? `${root}/dist/cli/commands/${name}.cjs` : null;
  for (const file of own ? [own, bundle] : [bundle]) {
    let st;
    try {
      st = statSync(file);
    } catch {
      continue;
    }
    if (st.mtimeMs >= built) return runBundle(file);
  }
  return null;
}

/** Compiles a bundle with its V8 code cache and returns its main. */
function runBundle(file) {
  const vm = require('node:vm');
  let cachedData;
  try {
    cachedData = readFileSync(`${file}.v8cache`);
  } catch {
    // No cache: compile.
  }
  // Same wrapper as scripts/build-cli.js: a code cache is valid for one exact source text.
  const code = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new vm.Script(code, { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, require('node:module').createRequire(file), module, file, dirname(file));
  return module.exports.main;
}

(async () => {
  const main = bundledMain() ?? (await import(pathToFileURL(entry).href)).main;
  process.exitCode = await main(process.argv.slice(2));
})();

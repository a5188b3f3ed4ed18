#!/usr/bin/env node
// Launcher for the nsm-emulator CLI. In a published package dist/ is present and is run as is.
// In a source checkout, dist/ is (re)built with the project's own TypeScript when it is missing
// or older than src/, so `npx nsm-emulator` works right after `npm install` with no build step.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'cli', 'main.js');
const srcDir = join(root, 'src');

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const t = e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

if (existsSync(srcDir)) {
  const stale = !existsSync(entry) || newestMtime(srcDir) > statSync(entry).mtimeMs;
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (stale && existsSync(tsc)) {
    const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0) {
      process.stderr.write('nsm-emulator: building dist/ from src/ failed (see above)\n');
      process.exit(1);
    }
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
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));

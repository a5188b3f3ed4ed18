#!/usr/bin/env node
// `npm run bench [-- --json] [-- suite ...]`: runs every bench/*.bench.js suite (or the named
// ones) against the built package in dist/ and prints a table, or a JSON array with --json.
// dist/ is rebuilt first (`npm run build`, its output sent to stderr) only when it is missing or
// older than a build input. With --json, standard output carries nothing but the JSON array
// (`npm run -s bench -- --json`: -s keeps npm's own banner off standard output too).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatTable } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const json = args.includes('--json');

/** Newest (or oldest) mtime of the files under `path` (a file or a directory). */
function mtimes(path, pick) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let best = null;
  for (const e of readdirSync(path)) {
    const t = mtimes(join(path, e), pick);
    if (t !== null) best = best === null ? t : pick(best, t);
  }
  return best;
}

const inputs = ['src', 'scripts', 'tsconfig.json', 'tsconfig.build.json', 'package.json'].map((p) => join(root, p)).filter(existsSync);
const dist = join(root, 'dist');
const built = existsSync(join(dist, 'index.js')) ? mtimes(dist, Math.min) : null;
const newestInput = Math.max(...inputs.map((p) => mtimes(p, Math.max) ?? 0));
if (built === null || newestInput > built) {
  console.error(`bench: ${built === null ? 'dist/ is missing' : 'dist/ is older than its sources'}; running npm run build`);
  const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
  const r = spawnSync(npm[0], [...npm[1], 'run', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    console.error('bench: npm run build failed');
    process.exit(1);
  }
}

const only = args.filter((a) => !a.startsWith('--'));
const suites = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.includes(f.replace('.bench.js', '')))
  .sort();

const rows = [];
for (const file of suites) {
  const suite = await import(pathToFileURL(join(here, file)).href);
  const got = await suite.run();
  rows.push(...got);
  if (!json) console.log(`# ${file.replace('.bench.js', '')}\n${formatTable(got)}\n`);
}
if (json) console.log(JSON.stringify(rows, null, 2));

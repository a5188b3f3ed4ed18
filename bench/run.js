#!/usr/bin/env node
// `npm run bench [-- --json] [-- suite ...]`: runs every bench/*.bench.js suite (or the named
// ones) against the built package in dist/ and prints a table, or a JSON array with --json.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatTable } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
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

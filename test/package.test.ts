// The published package, as a user gets it: a clean clone of this repository (git clone, so no
// dist/ and nothing untracked) is packed with `npm pack` (which must build dist/ itself), the
// tarball is installed into an empty project, and ESM, CommonJS (require of ESM) and TypeScript
// consumers, the CLI and the shipped examples run there. Only committed files are tested: commit
// before running this file. Dependencies come from npm's cache when present (--prefer-offline),
// from the registry otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/cli.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work = '';
let app = '';
let tarball = '';
let packedFiles: string[] = [];

function run(cmd: string, args: string[], cwd: string, input?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', input, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nsm-emulator-pack-'));
  const clone = join(work, 'clone');
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  run('git', ['clone', '--quiet', '--no-checkout', repoRoot, clone], work);
  run('git', ['checkout', '--quiet', head], clone);
  expect(existsSync(join(clone, 'dist'))).toBe(false);
  // The clone's dependencies are this checkout's (the clone is only packed, never installed).
  symlinkSync(join(repoRoot, 'node_modules'), join(clone, 'node_modules'), 'dir');
  const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', work], clone)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((f) => f.path);

  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], app);
}, 240_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack of a clean clone', () => {
  it('builds dist/ and ships the library, types, CLI, certs, docs, LICENSE and CHANGELOG, and no sources or tests', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/node/index.js', 'dist/cli/main.js', 'bin/nsm-emulator.js', 'certs/root.pem',
      'native/nsm-shim.c', 'docs/protocol.md', 'examples/vmm-loop.js', 'README.md', 'LICENSE', 'CHANGELOG.md', 'package.json']) {
      expect(packedFiles).toContain(f);
    }
    expect(packedFiles.filter((f) => /^(src|test|vectors|bench)\//.test(f))).toEqual([]);
    expect(readFileSync(join(app, 'node_modules/nsm-emulator/LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS/);
  });

  it('every source map carries the sources it points at', () => {
    const maps = packedFiles.filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(50);
    for (const f of maps) {
      const map = JSON.parse(readFileSync(join(app, 'node_modules/nsm-emulator', f), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      expect(map.sourcesContent?.length, f).toBe(map.sources.length);
      expect(map.sourcesContent!.every((s) => s.length > 0), f).toBe(true);
    }
  });

  it('the declarations leave out @internal members', () => {
    const dts = readFileSync(join(app, 'node_modules/nsm-emulator/dist/device/nsm-device.d.ts'), 'utf8');
    expect(dts).toContain('describePcr(index: number)');
    expect(dts).not.toMatch(/Now\(/);
  });
});

describe('installed into an empty project', () => {
  it('an ES module consumer signs and verifies a document against the exported certs/root.pem', () => {
    writeFileSync(join(app, 'esm.js'), `
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CaAttester, NsmDevice, SeededRandom, TEST_ROOT_PEM, VERSION, verifyAttestationDocument } from 'nsm-emulator';
import { NsmServer, nodeAttester } from 'nsm-emulator/node';
const device = new NsmDevice({ seed: '01' });
// The two entry points share their code: a class made through one is the other's class.
const attester = await nodeAttester()({ random: new SeededRandom(new Uint8Array([1])), clock: () => Date.now() });
const doc = await device.attestation({ nonce: new Uint8Array([7]) });
const root = readFileSync(fileURLToPath(import.meta.resolve('nsm-emulator/certs/root.pem')), 'utf8');
const verified = await verifyAttestationDocument(doc, { root, expectedNonce: new Uint8Array([7]) });
console.log(JSON.stringify({ sameRoot: root === TEST_ROOT_PEM, moduleId: verified.moduleId === device.moduleId, server: typeof NsmServer, VERSION,
  oneClass: attester instanceof CaAttester, entries: [import.meta.resolve('nsm-emulator'), import.meta.resolve('nsm-emulator/node')].map((u) => u.split('/nsm-emulator/')[1]) }));
`);
    const out = JSON.parse(run(process.execPath, ['esm.js'], app));
    const version = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version;
    // The entry points are the bundles scripts/build-lib.js writes (a handful of files to load, not ~100).
    expect(out).toEqual({ sameRoot: true, moduleId: true, server: 'function', VERSION: version, oneClass: true, entries: ['dist/bundle/index.js', 'dist/bundle/node.js'] });
    const bundled = readdirSync(join(app, 'node_modules/nsm-emulator/dist/bundle')).filter((f) => f.endsWith('.js'));
    expect(bundled.length).toBeLessThan(10);
  });

  it('a CommonJS consumer require()s both entry points and resolves the certs', () => {
    writeFileSync(join(app, 'cjs.cjs'), `
const { NsmDevice, NsmError } = require('nsm-emulator');
const { NsmServer } = require('nsm-emulator/node');
const rootPath = require.resolve('nsm-emulator/certs/root.pem');
new NsmDevice().extendPcr(0, new Uint8Array(1)).catch((e) => {
  console.log(JSON.stringify({ error: e instanceof NsmError && e.code, server: typeof NsmServer, root: rootPath.endsWith('node_modules/nsm-emulator/certs/root.pem') }));
});
`);
    const r = spawnSync(process.execPath, ['cjs.cjs'], { cwd: app, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'ReadOnlyIndex', server: 'function', root: true });
  });

  it('TypeScript consumers (ESM and CommonJS, strict, NodeNext) type-check against the shipped declarations', () => {
    mkdirSync(join(app, 'ts'), { recursive: true });
    writeFileSync(join(app, 'ts/app.mts'), `
import { NsmDevice, NsmError, type Nsm, type NsmDescription, ResponseDecodeError, decodeResponse } from 'nsm-emulator';
import { NsmServer, type NsmServerOptions } from 'nsm-emulator/node';
async function app(nsm: Nsm): Promise<Uint8Array> {
  await nsm.extendPcr(16, new Uint8Array([1]));
  return nsm.attestation({ nonce: new Uint8Array([1]) });
}
const description: NsmDescription = { versionMajor: 1, versionMinor: 0, versionPatch: 0, moduleId: 'm', maxPcrs: 32, lockedPcrs: [], digest: 'SHA384' };
const fake: Nsm = {
  describePcr: async () => ({ lock: false, data: new Uint8Array(48) }),
  extendPcr: async () => new Uint8Array(48),
  lockPcr: async () => {},
  lockPcrs: async () => {},
  describeNsm: async () => description,
  getRandom: async () => new Uint8Array(256),
  attestation: async () => new Uint8Array(0),
};
const device = new NsmDevice({ seed: '01' });
await app(device);
await app(fake);
// @ts-expect-error internal methods are not part of the published types
device.describePcrNow(0);
const options: NsmServerOptions = { frameLengthCap: 1 << 20 };
export const values = [NsmError, ResponseDecodeError, decodeResponse, NsmServer, options];
`);
    writeFileSync(join(app, 'ts/app.cts'), `
import { NsmDevice, type Nsm } from 'nsm-emulator';
const nsm: Nsm = new NsmDevice();
export = nsm;
`);
    writeFileSync(join(app, 'ts/tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false,
        types: ['node'], typeRoots: [join(repoRoot, 'node_modules/@types')],
      },
      include: ['*.mts', '*.cts'],
    }));
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'ts/tsconfig.json'], { cwd: app, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  it('TypeScript consumers with moduleResolution node10 (no exports support) resolve nsm-emulator and nsm-emulator/node (typesVersions)', () => {
    mkdirSync(join(app, 'ts10'), { recursive: true });
    writeFileSync(join(app, 'ts10/app.ts'), `
import { NsmDevice, type Nsm } from 'nsm-emulator';
import { NsmServer, type NsmServerOptions } from 'nsm-emulator/node';
const nsm: Nsm = new NsmDevice({ seed: '01' });
const options: NsmServerOptions = { frameLengthCap: 1 << 20 };
// @ts-expect-error a wrong option type is caught, so the declarations really were found
const wrong: NsmServerOptions = { frameLengthCap: 'big' };
export const values = [nsm, NsmServer, options, wrong];
`);
    writeFileSync(join(app, 'ts10/tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, module: 'commonjs', moduleResolution: 'node10', target: 'es2022', noEmit: true, skipLibCheck: false,
        types: ['node'], typeRoots: [join(repoRoot, 'node_modules/@types')], ignoreDeprecations: '5.0',
      },
      include: ['*.ts'],
    }));
    const tsc = join(repoRoot, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'ts10/tsconfig.json', '--traceResolution'], { cwd: app, encoding: 'utf8' });
    expect(r.status, r.stdout.split('\n').filter((l) => /error|nsm-emulator\/node/.test(l)).join('\n')).toBe(0);
    expect(r.stdout).toMatch(/Module name 'nsm-emulator\/node' was successfully resolved to '[^']*node_modules\/nsm-emulator\/dist\/node\/index\.d\.ts'/);
  }, 60_000);

  it('the installed CLI runs: --version, attest piped into verify --root test', () => {
    const bin = join(app, 'node_modules/.bin/nsm-emulator');
    expect(run(bin, ['--version'], app)).toMatch(/^nsm-emulator \d+\.\d+\.\d+/);
    const doc = run(bin, ['attest', '--nonce', 'ab', '--format', 'hex'], app);
    expect(run(bin, ['verify', '-', '--root', 'test', '--expect-nonce', 'ab'], app, doc)).toMatch(/^OK: verified against the committed test root/);
  });

  it('the shipped examples run when copied into the project', () => {
    const examples = join(app, 'node_modules/nsm-emulator/examples');
    for (const f of readdirSync(examples)) copyFileSync(join(examples, f), join(app, f));
    const out = run(process.execPath, ['vmm-loop.js'], app);
    expect(out).toContain('Attestation through the virtqueue: Attestation');
  });
});

describe('documentation stands alone', () => {
  it('no doc, example or README points outside the package (../shared, ../dist)', () => {
    const files = ['README.md', 'certs/README.md', ...readdirSync(join(repoRoot, 'docs')).map((f) => `docs/${f}`), ...readdirSync(join(repoRoot, 'examples')).map((f) => `examples/${f}`)];
    const bad = files.flatMap((f) => (/\.\.\/(shared|dist)\b/.test(readFileSync(join(repoRoot, f), 'utf8')) ? [f] : []));
    expect(bad).toEqual([]);
  });
});

/**
 * Test CA directories on disk (Node only): what `nsm-emulator ca init` writes and `--ca DIR`
 * reads.
 *
 * A directory holds `manifest.json`, the root certificate `root.pem` (the one to pin) and its
 * key `root.key` (unencrypted PKCS#8 PEM: the directory is TEST ONLY, anyone holding it can sign
 * documents that chain to its root). The certificates below the root are derived from it when
 * documents are signed, so there is nothing else to store and nothing that expires early.
 * Directories written by earlier versions also list `regional` and `zonal` entries: they are
 * accepted and ignored (their files are not read).
 * @module
 */
import { createECDH, createHash } from 'node:crypto';
import { nodeCryptoBackend } from './crypto-backend.js';
import { InputTooLargeError, readFileBounded } from './bounded-read.js';
import { PrivateFileError, checkTargets, ensurePrivateDir, writeFileExclusive } from './private-files.js';
import { isAbsolute, join } from 'node:path';
import type { AttesterFactory } from '../device/attester.js';
import { type CaAttesterOptions, caAttester } from '../attestation/ca-attester.js';
import { type PemPair, type TestCa, type TestCaPem, TestCaError, testCaFromPem, testCaToPem } from '../attestation/test-ca.js';
import { NistCurvesNotLoadedError, loadNistCurves } from '../x509/nist-curves.js';
import { committedTestCa } from '../attestation/default-attester.js';
import { systemRandom } from '../device/random.js';
import type { IssuedCert } from '../attestation/chain-profile.js';
import { parseCertificate } from '../x509/certificate.js';

/** The `format` value of a manifest this version reads and writes. */
export const CA_MANIFEST_FORMAT = 'nsm-emulator-ca/1';

export const CA_WARNING =
  'TEST ONLY. This is an nsm-emulator test CA; its private keys are in this directory. ' +
  'Never pin this root where real AWS Nitro attestation is expected.';

type Level = 'root';
const LEVELS: readonly Level[] = ['root'];

interface ManifestEntry {
  certificate: string;
  privateKey: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  sha256: string;
}

export interface CaManifest {
  format: string;
  warning: string;
  region: string;
  root: ManifestEntry;
}

/** A problem with a CA directory: names the file and what was expected. */
export class CaDirError extends Error {
  override readonly name = 'CaDirError';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

/** Largest file of a CA directory read (a PEM certificate or key, the manifest: a few KiB). */
export const CA_FILE_MAX = 64 * 1024;

async function readText(file: string): Promise<string> {
  try {
    return new TextDecoder().decode(await readFileBounded(file, CA_FILE_MAX));
  } catch (e) {
    if (e instanceof InputTooLargeError) throw new CaDirError(file, `${e.message} (expected a PEM or JSON file of a few KiB)`);
    const code = (e as NodeJS.ErrnoException).code;
    throw new CaDirError(file, code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? String(e)})`);
  }
}

function entryFile(dir: string, manifestPath: string, level: Level, field: 'certificate' | 'privateKey', value: unknown): string {
  if (typeof value !== 'string' || value === '' || isAbsolute(value) || value.split(/[\\/]/).includes('..')) {
    throw new CaDirError(manifestPath, `field '${level}.${field}' must be a file name inside the directory, found ${JSON.stringify(value)}`);
  }
  return join(dir, value);
}

/** Reads the PEM text of a CA directory (manifest and the files it names). */
export async function readCaDirPem(dir: string): Promise<TestCaPem> {
  const manifestPath = join(dir, 'manifest.json');
  let manifest: Partial<CaManifest>;
  // Name the likelier mistake first: no such directory, or a directory that is not a CA.
  const st = process.getBuiltinModule('node:fs').statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) throw new CaDirError(dir, 'directory does not exist (make one with `nsm-emulator ca init --dir DIR`)');
  if (!st.isDirectory()) throw new CaDirError(dir, 'is not a directory');
  try {
    manifest = JSON.parse(await readText(manifestPath)) as Partial<CaManifest>;
  } catch (e) {
    if (e instanceof CaDirError) throw e;
    throw new CaDirError(manifestPath, `is not JSON (${(e as Error).message})`);
  }
  if (typeof manifest !== 'object' || manifest === null || manifest.format !== CA_MANIFEST_FORMAT) {
    throw new CaDirError(manifestPath, `field 'format' must be "${CA_MANIFEST_FORMAT}" (a directory made by 'nsm-emulator ca init')`);
  }
  if (typeof manifest.region !== 'string' || !/^[a-z0-9-]+$/.test(manifest.region)) {
    throw new CaDirError(manifestPath, `field 'region' must be a region name like "us-east-1", found ${JSON.stringify(manifest.region)}`);
  }
  const pairs: Partial<Record<Level, PemPair>> = {};
  for (const level of LEVELS) {
    const entry = manifest[level] as Partial<ManifestEntry> | undefined;
    if (entry === undefined) throw new CaDirError(manifestPath, "field 'root' is missing (the root certificate and key)");
    const certificate = await readText(entryFile(dir, manifestPath, level, 'certificate', entry.certificate));
    const privateKey = await readText(entryFile(dir, manifestPath, level, 'privateKey', entry.privateKey));
    pairs[level] = { certificate, privateKey };
  }
  return { region: manifest.region, root: pairs.root! };
}

/** Loads a CA directory, checking that every key belongs to its certificate. */
export async function loadCaDir(dir: string): Promise<TestCa> {
  const pem = await readCaDirPem(dir);
  let ca: TestCa;
  try {
    try {
      ca = testCaFromPem(pem);
    } catch (e) {
      // A PKCS#8 file without its public key: deriving it needs pure-JS ECDSA, loaded on demand.
      if (!(e instanceof NistCurvesNotLoadedError)) throw e;
      await loadNistCurves();
      ca = testCaFromPem(pem);
    }
  } catch (e) {
    if (e instanceof TestCaError) {
      const file = e.part.endsWith('private key') ? 'root.key' : 'root.pem';
      throw new CaDirError(join(dir, file), e.message);
    }
    throw e;
  }
  // A PKCS#8 file states its public key; make sure the private scalar really produces it.
  if (!sameBytes(publicKeyOf(ca.root.key.privateKey), ca.root.key.publicKey)) {
    throw new CaDirError(join(dir, 'root.key'), 'the private key does not produce the public key stored with it');
  }
  return ca;
}

/** The uncompressed public point of a P-384 private scalar (node:crypto); empty when the scalar is invalid. */
function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  try {
    const ecdh = createECDH('secp384r1');
    ecdh.setPrivateKey(privateKey);
    return new Uint8Array(ecdh.getPublicKey());
  } catch {
    return new Uint8Array(0);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * An attester factory for Node: signs with `ca` (default: the committed test CA) through
 * node:crypto, or through @noble/curves (reproducible) when the device is seeded.
 */
export function nodeAttester(ca: TestCa = committedTestCa(), options: CaAttesterOptions = {}): AttesterFactory {
  const node = nodeCryptoBackend();
  return (env) => caAttester(ca, { ...options, crypto: options.crypto ?? (env.random === systemRandom ? node : 'auto') })(env);
}

/** An attester factory for the device's `attester` option, signing with the CA in `dir`. */
export async function attesterFromCaDir(dir: string, options: CaAttesterOptions = {}): Promise<AttesterFactory> {
  return nodeAttester(await loadCaDir(dir), options);
}

function manifestEntry(level: Level, cert: IssuedCert): ManifestEntry {
  const parsed = parseCertificate(cert.der);
  return {
    certificate: `${level}.pem`,
    privateKey: `${level}.key`,
    subject: parsed.subjectText,
    notBefore: new Date(parsed.notBefore).toISOString(),
    notAfter: new Date(parsed.notAfter).toISOString(),
    sha256: createHash('sha256').update(cert.der).digest('hex'),
  };
}

/** The manifest describing a CA. */
export function caManifest(ca: TestCa): CaManifest {
  return { format: CA_MANIFEST_FORMAT, warning: CA_WARNING, region: ca.region, root: manifestEntry('root', ca.root) };
}

/**
 * Writes a CA directory (creating `dir`); refuses to overwrite an existing manifest unless
 * `force`. Returns the paths written.
 */
export async function writeCaDir(dir: string, ca: TestCa, options: { force?: boolean } = {}): Promise<string[]> {
  const pem = testCaToPem(ca);
  const files: Array<[string, string, number]> = [];
  for (const level of LEVELS) {
    const pair = pem[level];
    files.push([`${level}.pem`, pair.certificate, 0o644], [`${level}.key`, pair.privateKey, 0o600]);
  }
  files.push(['manifest.json', JSON.stringify(caManifest(ca), null, 2) + '\n', 0o644]);
  try {
    // Private keys: the directory is 0700, nothing is written through a symbolic link, every
    // file gets exactly its mode (keys 0600) whatever was there before (./private-files.ts).
    await ensurePrivateDir(dir);
    await checkTargets(dir, ['manifest.json', ...files.map(([name]) => name).filter((n) => n !== 'manifest.json')], options.force === true, 'pass --force to replace the CA');
    const written: string[] = [];
    for (const [name, text, mode] of files) {
      await writeFileExclusive(join(dir, name), text, mode);
      written.push(join(dir, name));
    }
    return written;
  } catch (e) {
    if (e instanceof PrivateFileError) throw new CaDirError(e.path, e.detail);
    throw e;
  }
}

/**
 * TypeScript source embedding a CA directory for the core (which cannot read files):
 * how src/attestation/committed-ca.ts is made from certs/.
 */
export async function caModuleSource(dir: string): Promise<string> {
  const pem = await readCaDirPem(dir);
  const lit = (s: string) => JSON.stringify(s);
  const pair = (p: PemPair) => `{\n    certificate: ${lit(p.certificate)},\n    privateKey: ${lit(p.privateKey)},\n  }`;
  return `/**
 * The committed test CA (certs/), embedded so that the core can sign without reading files.
 * TEST ONLY: the private keys are public. Generated by \`nsm-emulator ca embed --dir certs --out
 * src/attestation/committed-ca.ts\`; do not edit by hand (a test checks it equals certs/).
 * @module
 */
import type { TestCaPem } from './test-ca.js';

export const COMMITTED_CA_PEM: TestCaPem = {
  region: ${lit(pem.region)},
  root: ${pair(pem.root)},
};
`;
}

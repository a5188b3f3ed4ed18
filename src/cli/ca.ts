/**
 * `nsm-emulator ca`: make, inspect and embed test CA directories.
 * @module
 */
import { AWS_ROOT_G1_NOT_AFTER, AWS_ROOT_G1_NOT_BEFORE, createTestCa, rootNotAfterFor } from '../attestation/test-ca.js';
import { DEFAULT_REGION } from '../attestation/chain-profile.js';
import { SeededRandom } from '../device/random.js';
import { parseSeed } from '../device/boot.js';
import { CaDirError, caManifest, caModuleSource, loadCaDir, writeCaDir } from '../node/ca-dir.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseTime, parseFlags } from './parse.js';
import { writeOutput } from './files.js';

const HELP = `Usage: nsm-emulator ca <init|show|embed> [options]

Test certificate authorities shaped like AWS's Nitro chain
(root -> regional -> zonal -> instance -> leaf, ECDSA P-384). TEST ONLY: the private key
is stored next to the certificate; never pin a test root where real AWS attestation is
expected. A CA is only its root: the regional, zonal and instance certificates are derived
from the root key and the device clock (dated as AWS's are: regional 0.6-5 days before a
document, zonal 3-20 hours, instance 6 minutes to 10 hours), the leaf is made per device,
so any device clock inside the root's validity gets a valid document.

  nsm-emulator ca init --dir DIR [options]
      Write a fresh CA: DIR/root.pem (the certificate to pin), DIR/root.key (PKCS#8 PEM)
      and DIR/manifest.json. The root is valid as long as AWS's Root-G1 by default,
      2019-10-28T13:28:05Z to 2049-10-28T14:28:05Z.
      --root-not-before T   start of the root's validity (ISO 8601 or Unix seconds)
      --root-not-after T    end of the root's validity (default: 30 years and 1 hour
                            after --root-not-before, Root-G1's shape)
      --region NAME         region in the certificate names (default ${DEFAULT_REGION})
      --seed HEX            derive keys, serials and ids from HEX (reproducible CA)
      --root-cn NAME        the root's common name (default: 'nsm-emulator test root -
                            not AWS - ' and 8 hex digits of the root key's SHA-256, so no
                            two test roots share a name; the committed root in certs/ is
                            the one with the bare name)
      --force               replace an existing CA in DIR
      DIR is made 0700 and the keys 0600 (certificates 0644), whatever the umask; every
      file is written to a new file and renamed into place, and a symbolic link at any of
      these names (or DIR itself being one) is refused, never followed.

  nsm-emulator ca show --dir DIR
      Check DIR (every key matches its certificate) and print its certificates.

  nsm-emulator ca embed --dir DIR [--out FILE]
      Print (or write to FILE) the TypeScript module that embeds DIR for the core library;
      this is how src/attestation/committed-ca.ts is regenerated from certs/.

Use a CA with: nsm-emulator attest --ca DIR, nsm-emulator rpc --ca DIR.
Without --ca the committed test CA in certs/ is used (pin it with 'verify --root test', or
the package's certs/root.pem).`;

async function init(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      dir: { type: 'string' },
      'root-not-before': { type: 'string' },
      'root-not-after': { type: 'string' },
      region: { type: 'string' },
      seed: { type: 'string' },
      'root-cn': { type: 'string' },
      force: { type: 'boolean' },
    },
    strict: true,
  });
  if (!values.dir) throw new UsageError('ca init: --dir DIR is required (the directory to write the CA to)');
  const nbFlag = values['root-not-before'];
  const naFlag = values['root-not-after'];
  const rootNotBefore = nbFlag === undefined ? AWS_ROOT_G1_NOT_BEFORE : parseTime('--root-not-before', nbFlag);
  const rootNotAfter =
    naFlag !== undefined ? parseTime('--root-not-after', naFlag) : nbFlag === undefined ? AWS_ROOT_G1_NOT_AFTER : rootNotAfterFor(rootNotBefore);
  if (Math.floor(rootNotAfter / 1000) <= Math.floor(rootNotBefore / 1000)) {
    throw new UsageError(`--root-not-after '${naFlag}' is not after the root's notBefore (${new Date(rootNotBefore).toISOString()})`);
  }
  const region = values.region ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]+$/.test(region)) throw new UsageError(`--region '${region}': expected a region name like us-east-1`);
  const rootCn = values['root-cn'];
  if (rootCn !== undefined && (rootCn.length === 0 || rootCn.length > 64)) {
    throw new UsageError(`--root-cn '${rootCn}': expected 1 to 64 characters (X.520's upper bound for a common name)`);
  }
  let random;
  if (values.seed !== undefined) {
    try {
      random = new SeededRandom(parseSeed(values.seed), 'test-ca');
    } catch {
      throw new UsageError(`--seed '${values.seed}': expected non-empty hex bytes`);
    }
  }
  const ca = await createTestCa({ rootNotBefore, rootNotAfter, region, ...(random ? { random } : {}), ...(rootCn !== undefined ? { rootCommonName: rootCn } : {}) });
  let written: string[];
  try {
    written = await writeCaDir(values.dir, ca, { force: values.force === true });
  } catch (e) {
    if (e instanceof CaDirError) throw new UsageError(e.message);
    throw e;
  }
  const valid = `valid ${new Date(ca.root.notBefore * 1000).toISOString()} to ${new Date(ca.root.notAfter * 1000).toISOString()}`;
  io.stdout.write(`Wrote a TEST ONLY CA to ${values.dir} (root ${valid}):\n${written.map((f) => `  ${f}`).join('\n')}\nPin ${values.dir}/root.pem in your verifier.\n`);
  return 0;
}

async function load(dir: string | undefined, sub: string) {
  if (!dir) throw new UsageError(`ca ${sub}: --dir DIR is required`);
  try {
    return await loadCaDir(dir);
  } catch (e) {
    if (e instanceof CaDirError) throw new UsageError(e.message);
    throw e;
  }
}

async function show(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({ args, options: { dir: { type: 'string' } }, strict: true });
  const m = caManifest(await load(values.dir, 'show'));
  const lines = [`TEST ONLY CA in ${values.dir} (region ${m.region})`];
  const e = m.root;
  lines.push(`root      ${e.subject}`, `          valid ${e.notBefore} to ${e.notAfter}`, `          DER SHA-256 ${e.sha256}`);
  lines.push('(regional, zonal and instance certificates are derived from the root as documents are signed)');
  io.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function embed(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({ args, options: { dir: { type: 'string' }, out: { type: 'string' } }, strict: true });
  await load(values.dir, 'embed');
  const source = await caModuleSource(values.dir!);
  if (values.out) await writeOutput(`--out ${values.out}`, values.out, source);
  else io.stdout.write(source);
  return 0;
}

export const command: CliCommand = {
  summary: 'make, check and embed test CAs shaped like AWS\'s Nitro chain (TEST ONLY)',
  help: HELP,
  async run(args, io) {
    const [sub, ...rest] = args;
    try {
      switch (sub) {
        case 'init':
          return await init(rest, io);
        case 'show':
          return await show(rest, io);
        case 'embed':
          return await embed(rest, io);
        default:
          throw new UsageError(sub === undefined ? 'expected a subcommand: init, show or embed' : `unknown subcommand '${sub}' (expected init, show or embed)`);
      }
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((e as Error).message);
      throw e;
    }
  },
};

/**
 * `nsm-emulator ca`: make, inspect and embed test CA directories.
 * @module
 */
import { createTestCa } from '../attestation/test-ca.js';
import { DEFAULT_REGION } from '../attestation/chain-profile.js';
import { SeededRandom } from '../device/random.js';
import { parseSeed } from '../device/boot.js';
import { CaDirError, caManifest, caModuleSource, loadCaDir, writeCaDir } from '../node/ca-dir.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseTime, parseFlags } from './parse.js';
import { writeOutput } from './files.js';

const HELP = `Usage: nsm-emulator ca <init|show|embed> [options]

Test certificate authorities shaped like AWS's Nitro chain
(root -> regional -> zonal -> instance -> leaf, ECDSA P-384). TEST ONLY: the private keys
are stored next to the certificates; never pin a test root where real AWS attestation is
expected. Devices make the instance and leaf certificates themselves, and replace the
regional and zonal ones in memory once the device clock passes their validity.

  nsm-emulator ca init --dir DIR [options]
      Write a fresh CA: DIR/root.pem (the certificate to pin), DIR/root.key,
      DIR/regional.pem, DIR/regional.key, DIR/zonal.pem, DIR/zonal.key (PKCS#8 PEM)
      and DIR/manifest.json.
      --time T              issuance time of the regional and zonal certificates
                            (ISO 8601 or Unix seconds; default now)
      --root-not-before T   start of the root's 30-year validity (default: --time)
      --region NAME         region in the certificate names (default ${DEFAULT_REGION})
      --seed HEX            derive keys, serials and ids from HEX (reproducible CA)
      --force               replace an existing CA in DIR

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
      time: { type: 'string' },
      'root-not-before': { type: 'string' },
      region: { type: 'string' },
      seed: { type: 'string' },
      force: { type: 'boolean' },
    },
    strict: true,
  });
  if (!values.dir) throw new UsageError('ca init: --dir DIR is required (the directory to write the CA to)');
  const time = values.time === undefined ? Date.now() : parseTime('--time', values.time);
  const rootNotBefore = values['root-not-before'] === undefined ? time : parseTime('--root-not-before', values['root-not-before']);
  if (rootNotBefore > time) throw new UsageError(`--root-not-before '${values['root-not-before']}' is after --time; the root must exist before it issues`);
  const region = values.region ?? DEFAULT_REGION;
  if (!/^[a-z0-9-]+$/.test(region)) throw new UsageError(`--region '${region}': expected a region name like us-east-1`);
  let random;
  if (values.seed !== undefined) {
    try {
      random = new SeededRandom(parseSeed(values.seed), 'test-ca');
    } catch {
      throw new UsageError(`--seed '${values.seed}': expected non-empty hex bytes`);
    }
  }
  const ca = await createTestCa({ time, rootNotBefore, region, ...(random ? { random } : {}) });
  let written: string[];
  try {
    written = await writeCaDir(values.dir, ca, { force: values.force === true });
  } catch (e) {
    if (e instanceof CaDirError) throw new UsageError(e.message);
    throw e;
  }
  io.stdout.write(`Wrote a TEST ONLY CA to ${values.dir}:\n${written.map((f) => `  ${f}`).join('\n')}\nPin ${values.dir}/root.pem in your verifier.\n`);
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
  for (const level of ['root', 'regional', 'zonal'] as const) {
    const e = m[level];
    if (!e) continue;
    lines.push(`${level.padEnd(9)} ${e.subject}`, `          valid ${e.notBefore} to ${e.notAfter}`, `          DER SHA-256 ${e.sha256}`);
  }
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

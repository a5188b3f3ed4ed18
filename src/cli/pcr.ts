/**
 * `nsm-emulator pcr`: the PCR value one input produces, as `nitro-cli pcr` prints it.
 * @module
 */
import { createReadStream } from 'node:fs';
import { certificateDerFromPem } from '../eif/certificate.js';
import { extendFromZero } from '../eif/hash.js';
import { toPrettyJson } from '../eif/json-text.js';
import { latin1Text } from '../x509/pem.js';
import { parentInstancePcr, parentRolePcr } from '../eif/boot-profile.js';
import { nodeSha384 } from '../node/eif-file.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { toHex, parseFlags } from './parse.js';
import { INPUT_LIMITS, fileProblem, readInput } from './files.js';

const HELP = `Usage: nsm-emulator pcr (--input FILE | --signing-certificate FILE | --parent-role ARN | --parent-id ID)

Prints the PCR value one input measures to: SHA-384 of 48 zero bytes followed by the SHA-384 of
the input, the single extend of a zero register that Nitro uses.

  --input FILE                the file's bytes                      -> {"PCR": ...}
  --signing-certificate FILE  the DER of the first PEM certificate  -> {"PCR8": ...}
                              (what a signed EIF puts in PCR8)
  --parent-role ARN           the parent's IAM role ARN, extended as raw UTF-8 -> {"PCR3": ...}
  --parent-id ID              the parent instance id, extended as raw UTF-8    -> {"PCR4": ...}

The first two print exactly what 'nitro-cli pcr' prints; the last two are this emulator's
additions (PCR3 and PCR4 are not hashed first: the string itself is the extend data).`;

/** SHA-384 of a file of any size, streamed: memory stays flat whatever the file holds. */
async function hashFile(option: string, path: string): Promise<Uint8Array> {
  const h = nodeSha384();
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Uint8Array);
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${fileProblem(e, path)}`);
  }
  return h.digest();
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: { input: { type: 'string' }, 'signing-certificate': { type: 'string' }, 'parent-role': { type: 'string' }, 'parent-id': { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const given = (['input', 'signing-certificate', 'parent-role', 'parent-id'] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --input, --signing-certificate, --parent-role, --parent-id');
  let key: string;
  let value: Uint8Array;
  if (values.input !== undefined) {
    key = 'PCR';
    value = extendFromZero(await hashFile('--input', values.input), nodeSha384);
  } else if (values['signing-certificate'] !== undefined) {
    const path = values['signing-certificate'];
    const der = certificateDerFromPem(latin1Text(await readInput(`--signing-certificate ${path}`, path, INPUT_LIMITS.pem, 'a PEM certificate, a few KiB')));
    if (!der) throw new UsageError(`--signing-certificate ${path}: expected a PEM file holding an X.509 certificate ("-----BEGIN CERTIFICATE-----")`);
    key = 'PCR8';
    value = extendFromZero(nodeSha384Digest(der), nodeSha384);
  } else if (values['parent-role'] !== undefined) {
    if (values['parent-role'] === '') throw new UsageError("--parent-role '': expected an IAM role ARN");
    key = 'PCR3';
    value = parentRolePcr(values['parent-role'], nodeSha384);
  } else {
    if (values['parent-id'] === '') throw new UsageError("--parent-id '': expected a parent instance id");
    key = 'PCR4';
    value = parentInstancePcr(values['parent-id']!, nodeSha384);
  }
  io.stdout.write(toPrettyJson(new Map([[key, toHex(value)]])) + '\n');
  return 0;
}

function nodeSha384Digest(data: Uint8Array): Uint8Array {
  const h = nodeSha384();
  h.update(data);
  return h.digest();
}

export const command: CliCommand = { summary: 'print the PCR value of a file, signing certificate, role ARN or instance id', help: HELP, run };

/**
 * `nsm-emulator describe-eif`: what `nitro-cli describe-eif` prints for an EIF file, computed
 * without Docker or Nitro hardware.
 * @module
 */
import { describeEif, describeEifText } from '../eif/describe.js';
import { EifFormatError } from '../eif/errors.js';
import { measureEifFile } from '../node/eif-file.js';
import { nodeEcdsaVerifier } from '../node/ecdsa-verifier.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { ttyProgress } from './progress.js';

const HELP = `Usage: nsm-emulator describe-eif --eif-path FILE

Reads an Enclave Image File and prints the JSON that 'nitro-cli describe-eif' prints: EifVersion,
Measurements (HashAlgorithm, PCR0, PCR1, PCR2, and PCR8 for signed images), IsSigned,
SigningCertificate, CheckCRC, SignatureCheck, ImageName, ImageVersion and Metadata.

PCR0 hashes the kernel, cmdline and every ramdisk; PCR1 the kernel, cmdline and first ramdisk;
PCR2 the other ramdisks; PCR8 the signing certificate. These are the values a Nitro enclave
booted from FILE attests (see also 'rpc --eif' and 'attest --eif').

Exit status: 0 when the image is sound; 1 when the JSON was printed but the CRC or the
signature does not check (the reason goes to standard error); 2 when FILE is not a readable
EIF (the message names the problem and its offset).

Options:
  --eif-path FILE   the image to describe`;

async function run(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags({ args, options: { 'eif-path': { type: 'string' } }, strict: true, allowPositionals: true });
  const path = values['eif-path'];
  if (positionals.length > 0) {
    // nitro-cli takes the image only as --eif-path; say so rather than guess.
    const hint = path === undefined && positionals.length === 1 ? `: did you mean --eif-path ${positionals[0]}?` : ' (the image is given with --eif-path FILE)';
    throw new UsageError(`unexpected argument '${positionals[0]}'${hint}`);
  }
  if (path === undefined) throw new UsageError('--eif-path FILE is required');
  let description;
  let threadFailure: string | undefined;
  const progress = ttyProgress(io, 'describe-eif');
  try {
    description = describeEif(
      await measureEifFile(path, {
        onProgress: progress ? (done, total) => progress.report(`reading ${path}`, done, total) : undefined,
        onThreads: (r) => (threadFailure = r.failure),
        signatureVerifier: nodeEcdsaVerifier,
      }),
      undefined,
      nodeEcdsaVerifier,
    );
  } catch (e) {
    if (e instanceof EifFormatError) throw new UsageError(`${path}: ${e.message}`);
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('E')) throw new UsageError(`${path}: cannot read the file (${code})`);
    throw e;
  } finally {
    progress?.finish();
  }
  // The result is the same either way; say why it took one thread's time.
  if (threadFailure !== undefined) io.stderr.write(`nsm-emulator describe-eif: ${path}: measured again on one thread: ${threadFailure}\n`);
  io.stdout.write(describeEifText(description) + '\n');
  for (const p of description.problems) io.stderr.write(`nsm-emulator describe-eif: ${path}: ${p}\n`);
  return description.problems.length > 0 ? 1 : 0;
}

export const command: CliCommand = { summary: 'print the measurements and details of an EIF, as nitro-cli describe-eif', help: HELP, run };

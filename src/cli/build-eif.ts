/**
 * `nsm-emulator build-eif`: writes an Enclave Image File from a kernel, a command line and
 * ramdisks, byte for byte as AWS's EIF builder would, optionally signed. No Docker needed.
 * @module
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { once } from 'node:events';
import { measurementsJson } from '../eif/describe.js';
import { EifBuildError } from '../eif/errors.js';
import { toPrettyJson } from '../eif/json-text.js';
import { parseCustomMetadata } from '../eif/metadata.js';
import type { JsonValue } from '../eif/json-text.js';
import { buildEif, type EifSigning } from '../eif/writer.js';
import { fileSource, nodeCrc32, nodeSha384 } from '../node/eif-file.js';
import { ttyProgress } from './progress.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { INPUT_LIMITS, fileProblem, readInput } from './files.js';

const HELP = `Usage: nsm-emulator build-eif --kernel FILE --cmdline TEXT --ramdisk FILE [--ramdisk FILE]...
                             --output FILE [options]

Writes an Enclave Image File (version 4) laid out exactly as AWS's builder (nitro-cli,
eif_build) lays it out: kernel, cmdline, metadata, the ramdisks in the order given, and a
signature section when signing. Prints the measurements as 'nitro-cli build-enclave' does.
nitro-cli puts its bootstrap ramdisk (init, nsm.ko) first and the application second: PCR1
covers the kernel, cmdline and first ramdisk, PCR2 the others, PCR0 all of them.

Required:
  --kernel FILE               bzImage (x86_64) or Image (aarch64)
  --cmdline TEXT              kernel command line (stored as given, without a trailing NUL;
                              TEXT may start with '-')
  --ramdisk FILE              a ramdisk (cpio or cpio.gz); repeat for more, in order
  --output FILE               where to write the image

Signing (both or neither; PCR8 then measures the certificate):
  --signing-certificate FILE  PEM X.509 certificate of an EC P-256/P-384/P-521 key
  --private-key FILE          PEM EC private key ('EC PRIVATE KEY' or 'PRIVATE KEY')
                              The signature is deterministic ECDSA (RFC 6979).

Metadata section (not measured):
  --name NAME                 ImageName (default: the kernel file's name, as eif_build)
  --version VERSION           ImageVersion (default: 1.0)
  --metadata FILE             custom metadata JSON, at most 4096 bytes (default: null)
  --docker-info FILE          JSON for DockerInfo (default: null)
  --build-time TIME           BuildTime, RFC 3339 (default: now)
  --build-tool NAME           BuildTool (default: nsm-emulator)
  --build-tool-version V      BuildToolVersion (default: 0.1.0)
  --image-os NAME             OperatingSystem (default: Generic Linux)
  --image-kernel VERSION      KernelVersion (default: Unknown)
  --arch x86_64|aarch64       header architecture flag (default: x86_64)`;

const MAX_CUSTOM_METADATA = 4096;

/** chrono's `to_rfc3339()` for a UTC instant: fraction only when non-zero, `+00:00`. */
export function rfc3339(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.replace(/\.000Z$/, '+00:00').replace(/Z$/, '+00:00');
}

function readOption(option: string, path: string, limit: number, what: string): Promise<Uint8Array> {
  return readInput(`${option} ${path}`, path, limit, what);
}

async function sourceOption(option: string, path: string, onProgress?: (done: number, total: number) => void) {
  try {
    return await fileSource(path, onProgress ? { onProgress } : {});
  } catch (e) {
    throw new UsageError(`${option} ${path}: cannot read the file (${(e as { code?: string }).code ?? (e as Error).message})`);
  }
}

async function jsonOption(option: string, path: string, max: number): Promise<JsonValue> {
  const bytes = await readOption(option, path, max, `JSON of at most ${max} bytes`);
  try {
    return parseCustomMetadata(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new UsageError(`${option} ${path}: ${(e as Error).message}`);
  }
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      kernel: { type: 'string' },
      cmdline: { type: 'string' },
      ramdisk: { type: 'string', multiple: true },
      output: { type: 'string' },
      'signing-certificate': { type: 'string' },
      'private-key': { type: 'string' },
      name: { type: 'string' },
      version: { type: 'string' },
      metadata: { type: 'string' },
      'docker-info': { type: 'string' },
      'build-time': { type: 'string' },
      'build-tool': { type: 'string' },
      'build-tool-version': { type: 'string' },
      'image-os': { type: 'string' },
      'image-kernel': { type: 'string' },
      arch: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  for (const k of ['kernel', 'cmdline', 'output'] as const) if (values[k] === undefined) throw new UsageError(`--${k} is required`);
  if (!values.ramdisk?.length) throw new UsageError('--ramdisk FILE is required (at least one)');
  if ((values['signing-certificate'] === undefined) !== (values['private-key'] === undefined)) {
    throw new UsageError('--signing-certificate and --private-key go together');
  }
  const arch = values.arch ?? 'x86_64';
  if (arch !== 'x86_64' && arch !== 'aarch64') throw new UsageError(`--arch '${arch}': expected x86_64 or aarch64`);
  const kernelPath = values.kernel!;
  const output = values.output!;

  let signing: EifSigning | undefined;
  if (values['signing-certificate'] !== undefined) {
    signing = {
      certificatePem: await readOption('--signing-certificate', values['signing-certificate'], INPUT_LIMITS.pem, 'a PEM certificate, a few KiB'),
      privateKeyPem: new TextDecoder().decode(await readOption('--private-key', values['private-key']!, INPUT_LIMITS.pem, 'a PEM private key, a few KiB')),
    };
  }
  const metadata = {
    imageName: values.name ?? basename(kernelPath),
    imageVersion: values.version ?? '1.0',
    buildMetadata: {
      buildTime: values['build-time'] ?? rfc3339(Date.now()),
      buildTool: values['build-tool'] ?? 'nsm-emulator',
      buildToolVersion: values['build-tool-version'] ?? '0.1.0',
      operatingSystem: values['image-os'] ?? 'Generic Linux',
      kernelVersion: values['image-kernel'] ?? 'Unknown',
    },
    dockerInfo: values['docker-info'] === undefined ? null : await jsonOption('--docker-info', values['docker-info'], INPUT_LIMITS.json),
    customMetadata: values.metadata === undefined ? null : await jsonOption('--metadata', values.metadata, MAX_CUSTOM_METADATA),
  };
  // On a terminal: progress while the inputs are hashed, then while the image is written.
  const progress = ttyProgress(io, 'build-eif');
  let hashing = true;
  const hashed = (label: string) => (progress ? (done: number, total: number) => hashing && progress.report(label, done, total) : undefined);
  const kernel = await sourceOption('--kernel', kernelPath, hashed(`hashing ${kernelPath}`));
  const ramdisks = [];
  for (const r of values.ramdisk) ramdisks.push(await sourceOption('--ramdisk', r, hashed(`hashing ${r}`)));

  let built;
  try {
    built = await buildEif({ kernel, cmdline: values.cmdline!, ramdisks, metadata, architecture: arch, ...(signing ? { signing } : {}), sha384: nodeSha384, crc32: nodeCrc32 });
  } catch (e) {
    if (e instanceof EifBuildError) {
      const option = { BAD_CMDLINE: '--cmdline', BAD_PRIVATE_KEY: '--private-key', BAD_CERTIFICATE: '--signing-certificate', KEY_MISMATCH: '--private-key', TOO_MANY_SECTIONS: '--ramdisk', NO_RAMDISK: '--ramdisk', BAD_METADATA: '--metadata', INPUT_CHANGED: '--kernel/--ramdisk' }[e.code];
      const file = { '--private-key': values['private-key'], '--signing-certificate': values['signing-certificate'] }[option as string];
      throw new UsageError(`${option}${file ? ' ' + file : ''}: ${e.message}`);
    }
    throw e;
  } finally {
    hashing = false;
    progress?.finish();
  }

  // Write to a temporary name first so a failed build never leaves a truncated image behind.
  const tmp = `${output}.partial-${process.pid}`;
  try {
    const out = createWriteStream(tmp);
    const failed = once(out, 'error').then(([err]) => Promise.reject(err as Error));
    failed.catch(() => undefined);
    let written = 0;
    for await (const chunk of built.chunks()) {
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
      written += chunk.length;
      progress?.report(`writing ${output}`, written, built.size);
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
    await rename(tmp, output);
  } catch (e) {
    progress?.finish();
    await rm(tmp, { force: true });
    if (e instanceof EifBuildError) throw new UsageError(`--kernel/--ramdisk: ${e.message}`);
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('E')) throw new UsageError(`--output ${output}: ${fileProblem(e, output, true)}`);
    throw e;
  }
  progress?.finish();
  io.stdout.write(toPrettyJson(new Map([['Measurements', measurementsJson(built.pcrs)]])) + '\n');
  return 0;
}

export const command: CliCommand = { summary: 'write an EIF from a kernel, cmdline and ramdisks (optionally signed)', help: HELP, run };

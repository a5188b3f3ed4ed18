/**
 * `nsm-emulator attest`: power on an emulated NSM, send it one Attestation request and write
 * the document it returns.
 * @module
 */
import { base64Encode } from '../x509/pem.js';
import { ATTESTATION_FIELD_MAX } from '../device/boot.js';
import { BOOT_LOCKED_PCRS, REQUEST_MAX_SIZE } from '../device/limits.js';
import { describeReason } from '../device/error-code.js';
import { NsmDevice } from '../device/nsm-device.js';
import { NsmError } from '../device/error-code.js';
import { NsmDeviceGoneError } from '../device/faults.js';
import { CaDirError, attesterFromCaDir, nodeAttester } from '../node/ca-dir.js';
import { encodeRequest } from '../wire/encode-request.js';
import { decodeResponse } from '../wire/decode-response.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags, cliChainStore, deviceOptionsFromFlags } from './boot-options.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseHex, parsePcr, toHex, parseFlags } from './parse.js';
import { readInput, writeOutput } from './files.js';

const HELP = `Usage: nsm-emulator attest [options]

Powers on an emulated NSM, sends it one Attestation request and writes the attestation
document it answers with: an untagged COSE_Sign1 shaped byte for byte like AWS's, signed by a
test CA (chain: root -> regional -> zonal -> instance -> leaf). Verify it with
'nsm-emulator verify DOC --root test' (or --root your CA's root.pem).

Request fields (omit one to send null; '' sends an empty byte string):
  --nonce HEX           nonce, up to ${ATTESTATION_FIELD_MAX} bytes
  --user-data HEX       user_data, up to ${ATTESTATION_FIELD_MAX} bytes
  --public-key HEX|@FILE
                        public_key, up to ${ATTESTATION_FIELD_MAX} bytes (@FILE: the file's bytes)
The whole request must fit the device's ${REQUEST_MAX_SIZE}-byte limit, as on a real enclave.

Output:
  --out FILE            write the document to FILE (default: standard output)
  --format F            cbor, hex or base64 (default: cbor with --out, hex on standard output)
  --payload-map FORM    indefinite (bf...ff, AWS since 2025; default) or definite (a9, before)

Here --pcr N=HEX also locks PCR N (16-31 too), so every PCR given appears in the document;
PCRs 0-15 are always locked and present.

${BOOT_OPTIONS_HELP}

Exit status: 0 with a document; 1 when the device answers an error (printed); 2 for usage errors.`;

const OWN_OPTIONS = {
  nonce: { type: 'string' },
  'user-data': { type: 'string' },
  'public-key': { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  'payload-map': { type: 'string' },
} as const;

async function field(option: string, value: string | undefined): Promise<Uint8Array | null> {
  if (value === undefined) return null;
  let bytes: Uint8Array;
  if (option === '--public-key' && value.startsWith('@')) {
    const file = value.slice(1);
    bytes = await readInput(`--public-key ${value}`, file, ATTESTATION_FIELD_MAX, `a public key of at most ${ATTESTATION_FIELD_MAX} bytes, the NSM's limit per field`);
  } else {
    bytes = parseHex(option, value);
  }
  if (bytes.length > ATTESTATION_FIELD_MAX) {
    throw new UsageError(`${option}: ${bytes.length} bytes given; the NSM accepts at most ${ATTESTATION_FIELD_MAX} bytes per field`);
  }
  return bytes;
}

async function run(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({ args, options: { ...BOOT_OPTION_SPEC, ...OWN_OPTIONS }, strict: true, allowPositionals: false });
  const { nonce, 'user-data': userDataFlag, 'public-key': publicKeyFlag, out, format, 'payload-map': payloadMapFlag, ca, ...boot } = values;
  const fmt = format ?? (out === undefined ? 'hex' : 'cbor');
  if (fmt !== 'cbor' && fmt !== 'hex' && fmt !== 'base64') throw new UsageError(`--format '${fmt}': expected cbor, hex or base64`);
  const payloadMap = payloadMapFlag ?? 'indefinite';
  if (payloadMap !== 'indefinite' && payloadMap !== 'definite') {
    throw new UsageError(`--payload-map '${payloadMap}': expected indefinite or definite`);
  }
  const request = {
    type: 'Attestation' as const,
    userData: await field('--user-data', userDataFlag),
    nonce: await field('--nonce', nonce),
    publicKey: await field('--public-key', publicKeyFlag),
  };

  const options = await deviceOptionsFromFlags(boot as BootFlags, { io, command: 'attest' });
  let attester;
  try {
    const chainStore = cliChainStore({ io, command: 'attest' });
    attester = ca === undefined ? nodeAttester(undefined, { payloadMap, chainStore }) : await attesterFromCaDir(ca, { payloadMap, chainStore });
  } catch (e) {
    if (e instanceof CaDirError) throw new UsageError(`--ca '${ca}': ${e.message}`);
    throw e;
  }
  let reason: Error | null = null;
  const device = new NsmDevice({ ...options, attester, onInternalError: (e) => (reason = e.reason) });
  let response;
  try {
    for (const p of boot.pcr ?? []) {
      const [index] = parsePcr('--pcr', p);
      if (index >= BOOT_LOCKED_PCRS && !(await device.describePcr(index)).lock) await device.lockPcr(index);
    }
    // Through the wire format, so the request size limit applies exactly as on a real enclave.
    response = decodeResponse(await device.handleRaw(encodeRequest(request)));
  } catch (e) {
    if (!(e instanceof NsmError)) throw e;
    io.stderr.write(`nsm-emulator attest: ${e instanceof NsmDeviceGoneError ? e.message : `locking the --pcr values failed: ${e.code}`}\n`);
    return 1;
  }
  if (response.type !== 'Attestation') {
    const what = response.type === 'Error' ? response.code : `an unexpected ${response.type} response`;
    const why = response.type === 'Error' && response.code === 'InternalError' && reason !== null ? `: ${describeReason(reason as Error)}` : '';
    io.stderr.write(`nsm-emulator attest: the device answered ${what}${why}\n`);
    return 1;
  }
  const doc = response.document;
  const output = fmt === 'cbor' ? doc : new TextEncoder().encode(`${fmt === 'hex' ? toHex(doc) : base64Encode(doc)}\n`);
  if (out === undefined) io.stdout.write(output);
  else await writeOutput(`--out ${out}`, out, output);
  return 0;
}

export const command: CliCommand = {
  summary: 'make one attestation document (signed by a test CA) and write it out',
  help: HELP,
  run,
};

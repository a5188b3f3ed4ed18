/**
 * `nsm-emulator verify`: check an attestation document against a pinned root, the way a
 * careful verifier of real AWS documents does, and name the rule that failed.
 * @module
 */
import { type VerifiedDocument, verifyAttestationDocument } from '../attestation/verify.js';
import { AttestationVerifyError } from '../attestation/verify-error.js';
import { TEST_ROOT_PEM } from '../attestation/default-attester.js';
import { AWS_NITRO_ROOT_G1_PEM } from '../attestation/aws-root.js';
import { DocumentInputError, decodeDocumentInput } from '../attestation/document-input.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseHex, parsePcr, parseTime, toHex, parseFlags } from './parse.js';
import { INPUT_LIMITS, readInput } from './files.js';
import { nodeCryptoBackend } from '../node/crypto-backend.js';

/** Roots named on the command line instead of given as files (kms --trust-root takes the same names). */
export const BUILTIN_ROOTS = {
  test: { pem: TEST_ROOT_PEM, label: 'the committed test root' },
  aws: { pem: AWS_NITRO_ROOT_G1_PEM, label: "AWS's Nitro Enclaves Root-G1 (embedded)" },
} as const;

/** The built-in root a --root / --trust-root value names, if it names one. */
export function builtinRoot(name: string): { readonly pem: string; readonly label: string } | undefined {
  return Object.hasOwn(BUILTIN_ROOTS, name) ? BUILTIN_ROOTS[name as keyof typeof BUILTIN_ROOTS] : undefined;
}

const HELP = `Usage: nsm-emulator verify DOC --root ROOT.pem [options]

Verifies an attestation document: the COSE_Sign1 envelope, every syntactic rule of AWS's
verification procedure, the certificate path from the pinned root through cabundle to the
leaf (cabundle[0] must be the pinned root; it is never trusted just for being there), the
validity of every certificate, basicConstraints and path lengths, key usage, P-384 keys, and
the ES384 signature. Then the values given with --expect-*.

DOC is a file (or - for standard input) holding the document as raw CBOR, hex or base64.

  --root FILE|test|aws  PEM certificate to anchor at (required). 'test' names the committed
                        test CA's root (the one documents are signed under without --ca; also
                        shipped as certs/root.pem); 'aws' names AWS Nitro Enclaves Root-G1,
                        embedded (DER SHA-256 641a0321a3e244ef...), the root of real documents.
                        A file called test or aws is ./test or ./aws
  --time T              check certificate validity at T: ISO 8601, Unix seconds, or 'doc'
                        for the document's own timestamp (default: now)
  --expect-pcr N=HEX    PCR N must be present with this value (repeatable)
  --expect-nonce HEX    nonce must equal HEX
  --expect-user-data HEX
  --expect-public-key HEX
  --expect-module-id ID module_id must equal ID
  --aws-field-limits    apply AWS's written limits (user_data and nonce up to 512 bytes)
                        instead of the 1024 bytes the device produces
  --allow-unknown-keys  accept payload keys AWS does not define (by default a document with
                        one fails rule payload.unknown-key, as AWS's procedure rejects it)
  --json                print the result as JSON

Limits, checked before any signature work: the document at most 16640 bytes (rule cose.size;
a 16384-byte payload, AWS's limit, plus its envelope), cabundle at most 8 entries and every
certificate at most 1024 bytes (payload.cabundle, payload.certificate). The DOC file itself is
read up to 64 KiB (hex and base64 are longer than the bytes); a longer one is a usage error.

Exit status: 0 when every check passes; 1 when one fails (the failed rule is printed, e.g.
'chain.validity'), including a document that does not decode (cose.decode, cose.tag, ...);
2 for usage errors.`;

/** The document bytes in a file (raw CBOR, hex or base64), or a UsageError naming `file` (for kms). */
export function decodeDocument(file: string, raw: Uint8Array): Uint8Array {
  try {
    return decodeDocumentInput(raw);
  } catch (e) {
    if (e instanceof DocumentInputError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

/**
 * The document bytes for verify: as {@link decodeDocument}, but input that is not a document is
 * handed to the verifier (what hex or base64 text decoded to, else the bytes as they are), so
 * that a malformed document fails a named rule (`cose.decode`, `cose.tag`, ...) with exit 1,
 * like any other verification failure.
 */
function documentBytes(raw: Uint8Array): Uint8Array {
  try {
    return decodeDocumentInput(raw);
  } catch (e) {
    if (e instanceof DocumentInputError) return e.decoded ?? raw;
    throw e;
  }
}


const iso = (ms: number) => new Date(ms).toISOString();
const hexOrNull = (b: Uint8Array | null) => (b === null ? null : toHex(b));
const shown = (b: Uint8Array | null) => (b === null ? '(absent)' : b.length === 0 ? '(empty byte string)' : toHex(b));

function summary(doc: VerifiedDocument, rootFile: string): string {
  const lines = [
    `OK: verified against ${rootFile} (${doc.chain[0]!.subjectText}) at ${iso(doc.verifiedAt)}`,
    `module_id   ${doc.moduleId}`,
    `timestamp   ${iso(doc.timestamp)} (${doc.timestamp} ms)`,
    `digest      ${doc.digest}`,
    `format      ${doc.tagged ? 'tagged (18)' : 'untagged'} COSE_Sign1, ${doc.payloadMap === 'indefinite' ? 'indefinite-length (bf...ff)' : 'definite-length (a9)'} payload map`,
    'pcrs',
    ...[...doc.pcrs].map(([i, v]) => `  ${String(i).padStart(2)}  ${toHex(v)}`),
    `public_key  ${shown(doc.publicKey)}`,
    `user_data   ${shown(doc.userData)}`,
    `nonce       ${shown(doc.nonce)}`,
    'chain (pinned root first)',
    ...doc.chain.map((c) => `  ${c.subjectText}\n    valid ${iso(c.notBefore)} to ${iso(c.notAfter)}`),
  ];
  return lines.join('\n') + '\n';
}

function json(doc: VerifiedDocument): string {
  return JSON.stringify({
    ok: true,
    verifiedAt: iso(doc.verifiedAt),
    moduleId: doc.moduleId,
    timestamp: doc.timestamp,
    digest: doc.digest,
    tagged: doc.tagged,
    payloadMap: doc.payloadMap,
    pcrs: Object.fromEntries([...doc.pcrs].map(([i, v]) => [String(i), toHex(v)])),
    publicKey: hexOrNull(doc.publicKey),
    userData: hexOrNull(doc.userData),
    nonce: hexOrNull(doc.nonce),
    chain: doc.chain.map((c) => ({
      subject: c.subjectText,
      issuer: c.issuerText,
      serial: toHex(c.serial),
      notBefore: iso(c.notBefore),
      notAfter: iso(c.notAfter),
    })),
  });
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({
    args,
    options: {
      root: { type: 'string' },
      time: { type: 'string' },
      'expect-pcr': { type: 'string', multiple: true },
      'expect-nonce': { type: 'string' },
      'expect-user-data': { type: 'string' },
      'expect-public-key': { type: 'string' },
      'expect-module-id': { type: 'string' },
      'aws-field-limits': { type: 'boolean' },
      'allow-unknown-keys': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`expected one DOC argument (a file, or - for standard input), got ${positionals.length}`);
  if (values.root === undefined) throw new UsageError("--root FILE is required: the PEM root certificate to anchor at ('--root test' for the committed test root, '--root aws' for AWS's Root-G1)");
  const docPath = positionals[0]!;
  const builtin = builtinRoot(values.root);
  const rootText = builtin ? builtin.pem : new TextDecoder().decode(await readInput(`--root ${values.root}`, values.root, INPUT_LIMITS.pem, 'a PEM certificate, a few KiB', io));
  if (!rootText.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--root ${values.root}: expected a PEM certificate (-----BEGIN CERTIFICATE-----)`);
  const docLabel = docPath === '-' ? 'standard input' : docPath;
  const document = documentBytes(await readInput(docLabel, docPath, INPUT_LIMITS.document, 'an attestation document: at most 16 KiB, 32 KiB as hex', io));
  const time = values.time === undefined ? undefined : values.time === 'doc' ? ('document' as const) : parseTime('--time', values.time);
  const expectedPcrs = new Map<number, Uint8Array>();
  for (const p of values['expect-pcr'] ?? []) {
    const [i, v] = parsePcr('--expect-pcr', p);
    expectedPcrs.set(i, v);
  }
  const opt = (name: string, v: string | undefined) => (v === undefined ? undefined : parseHex(name, v));
  try {
    const doc = await verifyAttestationDocument(document, {
      root: rootText,
      ...(time === undefined ? {} : { time }),
      expectedPcrs,
      expectedNonce: opt('--expect-nonce', values['expect-nonce']),
      expectedUserData: opt('--expect-user-data', values['expect-user-data']),
      expectedPublicKey: opt('--expect-public-key', values['expect-public-key']),
      ...(values['expect-module-id'] === undefined ? {} : { expectedModuleId: values['expect-module-id'] }),
      fieldLimits: values['aws-field-limits'] ? 'aws-rules' : 'device',
      allowUnknownKeys: values['allow-unknown-keys'] === true,
      // node:crypto's synchronous verify: WebCrypto's first use costs a command more than the checks.
      crypto: nodeCryptoBackend(),
    });
    io.stdout.write(values.json ? json(doc) + '\n' : summary(doc, builtin ? builtin.label : values.root));
    return 0;
  } catch (e) {
    if (!(e instanceof AttestationVerifyError)) throw e;
    const message = e.message.slice(e.rule.length + 2);
    if (values.json) io.stdout.write(JSON.stringify({ ok: false, rule: e.rule, message }) + '\n');
    io.stderr.write(`nsm-emulator verify: FAILED rule ${e.rule}: ${message}\n`);
    return 1;
  }
}

export const command: CliCommand = {
  summary: 'verify an attestation document against a pinned root; names the rule that fails',
  help: HELP,
  run,
};

/**
 * `nsm-emulator kms`: a local KMS endpoint that enforces key policies on attestation documents
 * (AWS's JSON 1.1 protocol, for the AWS SDKs and CLI), and `nsm-emulator kms check`, which
 * evaluates a key policy offline for one document.
 * @module
 */
import { committedTestCa } from '../attestation/default-attester.js';
import { KmsError } from '../kms/errors.js';
import { PolicyError } from '../kms/policy.js';
import { checkKeyPolicy } from '../kms/check.js';
import { type KmsLogEntry, KmsService } from '../kms/service.js';
import { KmsHttpServer } from '../node/kms-server.js';
import { KmsStateError, loadKmsState, prepareKmsStateDir, saveKmsState } from '../node/kms-state.js';
import { pemDecodeAll } from '../x509/pem.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags, parseTime } from './parse.js';
import { isLoopback, parseListen } from './serve.js';
import { stopSignal } from './stop-signal.js';
import { builtinRoot, decodeDocument } from './verify.js';
import { INPUT_LIMITS, readInput } from './files.js';

const HELP = `Usage: nsm-emulator kms [--listen [HOST:]PORT] [options]
       nsm-emulator kms check --policy POLICY.json [--document DOC] [options]

Runs a local AWS KMS endpoint that enforces key policies on attestation documents. It speaks
KMS's JSON 1.1 protocol (POST / with X-Amz-Target: TrentService.<Operation>), so the AWS SDKs
and CLI work against it with an endpoint override (endpoint http://HOST:PORT, any region). The
first line on standard output is 'listening on http://HOST:PORT'; every request is logged on
standard error with the policy statement and condition that decided it. See docs/kms.md.

Operations: CreateKey, DescribeKey, ListKeys, PutKeyPolicy, GetKeyPolicy, ListKeyPolicies,
CreateAlias, ListAliases, EnableKey, DisableKey, Encrypt, Decrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair(WithoutPlaintext), GenerateRandom;
Recipient on Decrypt, GenerateDataKey, GenerateDataKeyPair and GenerateRandom: the document
is verified against the trusted roots, its public_key must be RSA, and the secret comes back
as CiphertextForRecipient.

Callers: requests must be SigV4-signed (as SDKs do); ANY access key and signature is accepted
unless --credentials is given. The caller is arn:aws:iam::ACCOUNT:root unless --principal maps
its access key to another ARN.

Options:
  --listen [HOST:]PORT  where to listen (default 127.0.0.1:0, port 0 picks a free port)
  --trust-root FILE|test|aws
                        PEM root certificate(s) Recipient documents must chain to (repeatable;
                        default: the committed test root, certs/root.pem). As in verify --root,
                        'test' names that root and 'aws' the embedded AWS Root-G1, which real
                        enclaves' documents chain to
  --time T              check document certificates at T (ISO 8601, Unix seconds, or 'doc' for
                        each document's own timestamp) instead of now
  --state DIR           keep keys and aliases in DIR/kms-state.json (0600, TEST ONLY: key
                        material in the clear) instead of only in memory
  --account ID          the 12-digit account that owns the keys (default 111122223333)
  --region REGION       the region in key ARNs (default us-east-1)
  --credentials AKID:SECRET  check SigV4 signatures; only these key pairs are accepted (repeatable)
  --principal AKID=ARN  the caller with access key AKID is ARN (repeatable), e.g.
                        AKIAEXAMPLE=arn:aws:iam::111122223333:role/EnclaveApp
  --max-connections N   concurrent connections (default 64)
  --max-body BYTES      largest request body (default 1048576)
  --log-json            log one JSON object per request instead of text
  --quiet               log only refused requests

kms check options:
  --policy FILE         the key policy (JSON) to evaluate (required)
  --document DOC        the Recipient attestation document: raw CBOR, hex or base64 (- = stdin)
  --action ACTION       default kms:Decrypt
  --context K=V         an encryption context pair (repeatable)
  --trust-root FILE|test|aws, --time T   as above; --no-verify evaluates the PCRs without verifying
  --account ID, --principal ARN, --key-arn ARN   the caller and the key
  --json                print the decision as JSON
Exit status of check: 0 allowed, 1 denied (or the document refused), 2 usage error.`;

/** Largest policy file read (KMS's limit is 32768 characters; room for UTF-8 and whitespace). */
const POLICY_FILE_LIMIT = 128 * 1024;

async function readTrustRoots(files: readonly string[] | undefined, io: CliIo): Promise<Uint8Array[]> {
  if (!files || files.length === 0) return [committedTestCa().root.der];
  const out: Uint8Array[] = [];
  for (const f of files) {
    const text = builtinRoot(f)?.pem ?? new TextDecoder().decode(await readInput(`--trust-root ${f}`, f, INPUT_LIMITS.pem, 'PEM certificates, a few KiB', io));
    let certs: Uint8Array[];
    try {
      certs = pemDecodeAll(text, 'CERTIFICATE');
    } catch (e) {
      throw new UsageError(`--trust-root ${f}: ${(e as Error).message}`);
    }
    if (certs.length === 0) throw new UsageError(`--trust-root ${f}: expected a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    out.push(...certs);
  }
  return out;
}

function parseTimeOption(v: string | undefined): number | 'document' | undefined {
  if (v === undefined) return undefined;
  return v === 'doc' || v === 'document' ? 'document' : parseTime('--time', v);
}

function parseAccount(v: string | undefined): string | undefined {
  if (v !== undefined && !/^\d{12}$/.test(v)) throw new UsageError(`--account '${v}': expected a 12-digit AWS account id`);
  return v;
}

function pairs(option: string, values: readonly string[] | undefined, sep: string, example: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values ?? []) {
    const i = v.indexOf(sep);
    if (i <= 0) throw new UsageError(`${option} '${v}': expected ${example}`);
    out.set(v.slice(0, i), v.slice(i + 1));
  }
  return out;
}

function positiveInt(option: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${option} '${v}': expected a positive integer`);
  return Number(v);
}

/** One log line for a person: operation, key, caller, outcome, and the policy's reason. */
export function kmsLogText(e: KmsLogEntry): string {
  const parts = [`${e.operation}`];
  if (e.keyId) parts.push(`key ${e.keyId}`);
  parts.push(`by ${e.caller}`);
  if (e.recipient) parts.push(`recipient ${e.recipient.moduleId} PCR0 ${e.recipient.pcr0 ?? '(absent)'}`);
  let line = `${parts.join(' ')}: ${e.outcome === 'ok' ? 'OK' : e.outcome}`;
  if (e.policy) line += ` — ${e.policy.reason}`;
  else if (e.detail) line += ` — ${e.detail}`;
  else if (e.message) line += ` — ${e.message}`;
  if (e.policy && e.detail && e.detail !== e.policy.reason) line += ` (${e.detail})`;
  return line + '\n';
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      listen: { type: 'string' },
      'trust-root': { type: 'string', multiple: true },
      time: { type: 'string' },
      state: { type: 'string' },
      account: { type: 'string' },
      region: { type: 'string' },
      credentials: { type: 'string', multiple: true },
      principal: { type: 'string', multiple: true },
      'max-connections': { type: 'string' },
      'max-body': { type: 'string' },
      'log-json': { type: 'boolean' },
      quiet: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const { host, port } = values.listen === undefined ? { host: '127.0.0.1', port: 0 } : parseListen(values.listen);
  const trustRoots = await readTrustRoots(values['trust-root'], io);
  const account = parseAccount(values.account);
  const region = values.region;
  if (region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new UsageError(`--region '${region}': expected a region name such as us-east-1`);
  const credentials = pairs('--credentials', values.credentials, ':', 'AKID:SECRET');
  const principals = pairs('--principal', values.principal, '=', 'AKID=arn:aws:iam::111122223333:role/NAME');
  for (const [akid, arn] of principals) {
    if (!/^arn:aws:(iam|sts)::\d{12}:.+$/.test(arn)) throw new UsageError(`--principal ${akid}=${arn}: expected an IAM or STS ARN (arn:aws:iam::ACCOUNT:...)`);
  }
  const maxConnections = positiveInt('--max-connections', values['max-connections'], 64);
  const maxBodyBytes = positiveInt('--max-body', values['max-body'], 1024 * 1024);

  let state;
  const dir = values.state;
  if (dir !== undefined) {
    try {
      await prepareKmsStateDir(dir);
      state = await loadKmsState(dir);
    } catch (e) {
      if (e instanceof KmsStateError) {
        io.stderr.write(`nsm-emulator kms: --state ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  }
  const log = (e: KmsLogEntry) => {
    if (values.quiet && e.outcome === 'ok') return;
    io.stderr.write(values['log-json'] ? JSON.stringify(e) + '\n' : kmsLogText(e));
  };
  let service: KmsService;
  try {
    service = new KmsService({
      trustRoots,
      ...(parseTimeOption(values.time) === undefined ? {} : { verifyTime: parseTimeOption(values.time)! }),
      ...(account ? { account } : {}),
      ...(region ? { region } : {}),
      ...(state ? { state } : {}),
      ...(dir !== undefined ? { onChange: (s) => saveKmsState(dir, s) } : {}),
      log,
    });
  } catch (e) {
    io.stderr.write(`nsm-emulator kms: ${dir !== undefined ? `--state ${dir}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
  const server = new KmsHttpServer(service, {
    credentials,
    principals,
    maxConnections,
    maxBodyBytes,
    onEvent: (m) => io.stderr.write(`nsm-emulator kms: ${m}\n`),
  });

  const signal = stopSignal();
  try {
    let url: string;
    try {
      url = await server.listen(host, port);
    } catch (e) {
      io.stderr.write(`nsm-emulator kms: --listen ${host}:${port}: ${(e as Error).message}\n`);
      return 1;
    }
    io.stdout.write(`listening on ${url}\n`);
    if (!isLoopback(host)) io.stderr.write(`nsm-emulator kms: warning: ${url} is reachable from other machines${credentials.size ? '' : ' and accepts any credentials'}\n`);
    io.stderr.write(
      `nsm-emulator kms: account ${service.account}, region ${service.region}, ${trustRoots.length} trusted root(s), ` +
        `${credentials.size ? `SigV4 checked for ${credentials.size} key pair(s)` : 'any credentials accepted'}, ` +
        `state ${dir === undefined ? 'in memory' : `in ${dir}`}; stop with Ctrl-C or SIGTERM\n`,
    );
    await signal.stopped;
    return 0;
  } finally {
    signal.dispose();
    await server.close();
  }
}

async function check(args: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      policy: { type: 'string' },
      document: { type: 'string' },
      action: { type: 'string' },
      context: { type: 'string', multiple: true },
      'trust-root': { type: 'string', multiple: true },
      time: { type: 'string' },
      'no-verify': { type: 'boolean' },
      account: { type: 'string' },
      principal: { type: 'string' },
      'key-arn': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.policy === undefined) throw new UsageError('--policy FILE is required: the key policy (JSON) to evaluate');
  const policyText = new TextDecoder().decode(await readInput(`--policy ${values.policy}`, values.policy, POLICY_FILE_LIMIT, 'a JSON key policy of at most 32768 characters', io));
  const action = values.action ?? 'kms:Decrypt';
  if (!/^kms:[A-Za-z*?]+$/.test(action)) throw new UsageError(`--action '${action}': expected kms:<Operation>, e.g. kms:Decrypt`);
  const ctx = Object.fromEntries(pairs('--context', values.context, '=', 'KEY=VALUE'));
  const docLabel = `--document ${values.document}`;
  const document =
    values.document === undefined
      ? undefined
      : decodeDocument(docLabel, await readInput(docLabel, values.document, INPUT_LIMITS.document, 'an attestation document: at most 16 KiB, 32 KiB as hex', io));
  const roots = await readTrustRoots(values['trust-root'], io);
  const time = parseTimeOption(values.time);
  if (values.principal !== undefined && !/^arn:aws:(iam|sts)::\d{12}:.+$/.test(values.principal)) {
    throw new UsageError(`--principal '${values.principal}': expected an IAM or STS ARN (arn:aws:iam::ACCOUNT:...)`);
  }
  // The caller's account: --account, else the one in --principal's ARN.
  const account = parseAccount(values.account) ?? (values.principal ? /::(\d{12}):/.exec(values.principal)![1] : undefined);
  try {
    const decision = await checkKeyPolicy({
      policy: policyText,
      action,
      encryptionContext: ctx,
      ...(document ? { document } : {}),
      ...(account ? { account } : {}),
      ...(values.principal ? { principalArn: values.principal } : {}),
      ...(values['key-arn'] ? { keyArn: values['key-arn'] } : {}),
      verify: values['no-verify'] ? 'skip' : 'verify',
      roots,
      ...(time === undefined ? {} : { time }),
    });
    if (values.json) io.stdout.write(JSON.stringify(decision) + '\n');
    else io.stdout.write(`${decision.allowed ? 'ALLOW' : 'DENY'}: ${decision.reason}\n${decision.trace.map((t) => `  ${t}\n`).join('')}`);
    return decision.allowed ? 0 : 1;
  } catch (e) {
    if (e instanceof PolicyError) throw new UsageError(`--policy ${values.policy}: ${e.message}`);
    if (e instanceof KmsError) {
      const line = `REFUSED (${e.type}): ${e.message}${e.detail ? ` — ${e.detail}` : ''}`;
      if (values.json) io.stdout.write(JSON.stringify({ allowed: false, outcome: 'refused', exception: e.type, reason: e.detail ?? e.message }) + '\n');
      else io.stdout.write(line + '\n');
      return 1;
    }
    throw e;
  }
}

export const command: CliCommand = {
  summary: 'run a local KMS endpoint that enforces key policies on attestation documents (kms check: offline)',
  help: HELP,
  run: (args, io) => (args[0] === 'check' ? check(args.slice(1), io) : serve(args, io)),
};

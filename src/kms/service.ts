/**
 * A local KMS: keys, aliases, key policies and the cryptographic operations, with `Recipient`
 * support, over WebCrypto. It takes one decoded JSON 1.1 request (operation name and body) and
 * returns the response body, or throws {@link KmsError}; the HTTP edge is src/node/kms-server.ts.
 *
 * Every request that touches a key is checked against the key's policy with the condition keys
 * KMS supplies (attestation PCRs, encryption context, caller account); each decision is
 * reported to `log` with the statement and condition that decided it.
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { base64Decode, base64Encode } from '../x509/pem.js';
import { type EncryptionContext, blobKeyId, importBlobKey, openBlob, sealBlob } from './ciphertext-blob.js';
import { buildCiphertextForRecipient } from './cms-recipient.js';
import { KmsError } from './errors.js';
import { type KeyPolicy, type PolicyDecision, PolicyError, evaluatePolicy, parsePolicy } from './policy.js';
import {
  type CheckedRecipient,
  MAX_ATTESTATION_DOCUMENT,
  attestationConditionKeys,
  checkRecipientDocument,
  encryptionContextConditionKeys,
} from './recipient.js';

/** The persisted form of the endpoint's keys and aliases (`--state DIR`). */
export interface KmsStateJson {
  format: 'nsm-emulator-kms/1';
  keys: Array<{ keyId: string; created: number; description: string; policy: string; enabled: boolean; material: string }>;
  aliases: Array<{ name: string; keyId: string; created: number }>;
}

/** Who is calling: from the request's SigV4 credential (see docs/kms.md). */
export interface KmsCaller {
  readonly accessKeyId: string;
  readonly principalArn: string;
  readonly account: string;
}

/** One line of the endpoint's log: what was asked, what was answered, and why. */
export interface KmsLogEntry {
  readonly operation: string;
  readonly caller: string;
  readonly keyId?: string;
  readonly outcome: 'ok' | string;
  readonly message?: string;
  readonly detail?: string;
  readonly policy?: PolicyDecision;
  readonly recipient?: { moduleId: string; pcr0: string | null };
}

export interface KmsServiceOptions {
  /** Trusted roots for Recipient documents (DER). */
  readonly trustRoots: readonly Uint8Array[];
  /** When Recipient certificates must be valid (default: now). */
  readonly verifyTime?: number | 'document';
  /** The account that owns the keys (default 111122223333). */
  readonly account?: string;
  readonly region?: string;
  /** Saved state to start from. */
  readonly state?: KmsStateJson;
  /** Called after every change with the whole new state (persistence); awaited before answering. */
  readonly onChange?: (state: KmsStateJson) => Promise<void>;
  readonly log?: (entry: KmsLogEntry) => void;
  /** Milliseconds since the epoch (default Date.now). */
  readonly clock?: () => number;
}

/** Bounds on what one endpoint holds. */
export const KMS_LIMITS = { keys: 10000, aliases: 10000, contextPairs: 64, contextBytes: 8192 } as const;

interface KeyRecord {
  readonly keyId: string;
  readonly arn: string;
  readonly created: number;
  readonly description: string;
  policyText: string;
  policy: KeyPolicy;
  enabled: boolean;
  readonly material: Uint8Array;
  cryptoKey?: Promise<CryptoKey>;
}

interface AliasRecord {
  readonly name: string;
  keyId: string;
  readonly created: number;
  updated: number;
}

type Body = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ALIAS = /^alias\/[a-zA-Z0-9/_-]+$/;

function validation(field: string, constraint: string): never {
  throw new KmsError('ValidationException', `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`);
}

const lcFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1);

function str(body: Body, name: string, opts: { required?: boolean; max?: number; min?: number } = {}): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (opts.required) validation(lcFirst(name), 'Member must not be null');
    return undefined;
  }
  if (typeof v !== 'string') throw new KmsError('SerializationException', `${name}: expected a string`);
  if (v.length < (opts.min ?? 1)) validation(lcFirst(name), `Member must have length greater than or equal to ${opts.min ?? 1}`);
  if (opts.max !== undefined && v.length > opts.max) validation(lcFirst(name), `Member must have length less than or equal to ${opts.max}`);
  return v;
}

function blob(body: Body, name: string, field: string, max: number, required: boolean): Uint8Array | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) validation(field, 'Member must not be null');
    return undefined;
  }
  if (typeof v !== 'string') throw new KmsError('SerializationException', `${name}: expected base64 text`);
  // Bound before decoding: base64 of `max` bytes is at most 4*ceil(max/3) characters.
  if (v.length > 4 * Math.ceil(max / 3) + 4) validation(field, `Member must have length less than or equal to ${max}`);
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(v);
  } catch {
    throw new KmsError('SerializationException', `${name}: not valid base64`);
  }
  if (bytes.length < 1) validation(field, 'Member must have length greater than or equal to 1');
  if (bytes.length > max) validation(field, `Member must have length less than or equal to ${max}`);
  return bytes;
}

function int(body: Body, name: string, min: number, max: number): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new KmsError('SerializationException', `${name}: expected an integer`);
  if (v < min) validation(lcFirst(name), `Member must have value greater than or equal to ${min}`);
  if (v > max) validation(lcFirst(name), `Member must have value less than or equal to ${max}`);
  return v;
}

function context(body: Body): EncryptionContext {
  const v = body.EncryptionContext;
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new KmsError('SerializationException', 'EncryptionContext: expected a map of strings');
  const out: Record<string, string> = Object.create(null);
  let size = 0;
  const entries = Object.entries(v);
  if (entries.length > KMS_LIMITS.contextPairs) validation('encryptionContext', `Member must have at most ${KMS_LIMITS.contextPairs} entries`);
  for (const [k, val] of entries) {
    if (typeof val !== 'string') throw new KmsError('SerializationException', `EncryptionContext.${k}: expected a string`);
    if (k.length === 0) validation('encryptionContext', 'Map keys must have length greater than or equal to 1');
    size += k.length + val.length;
    out[k] = val;
  }
  if (size > KMS_LIMITS.contextBytes) validation('encryptionContext', `Member must have a total size less than or equal to ${KMS_LIMITS.contextBytes}`);
  return out;
}

function encryptionAlgorithm(body: Body): void {
  const a = str(body, 'EncryptionAlgorithm');
  if (a !== undefined && a !== 'SYMMETRIC_DEFAULT') {
    if (['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'].includes(a)) throw new KmsError('InvalidKeyUsageException', `${a} is not supported by a symmetric key`);
    validation('encryptionAlgorithm', "Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]");
  }
}

function recipientDocument(body: Body): Uint8Array | undefined {
  const r = body.Recipient;
  if (r === undefined || r === null) return undefined;
  if (typeof r !== 'object' || Array.isArray(r)) throw new KmsError('SerializationException', 'Recipient: expected a structure');
  const rb = r as Body;
  const alg = str(rb, 'KeyEncryptionAlgorithm');
  if (alg !== undefined && alg !== 'RSAES_OAEP_SHA_256') validation('recipient.keyEncryptionAlgorithm', 'Member must satisfy enum value set: [RSAES_OAEP_SHA_256]');
  const doc = blob(rb, 'AttestationDocument', 'recipient.attestationDocument', MAX_ATTESTATION_DOCUMENT, false);
  if (doc === undefined) throw new KmsError('ValidationException', 'Recipient.AttestationDocument is required when Recipient is given');
  return doc;
}

function newUuid(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = bytesToHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The policy KMS gives a key created without one: the account (through IAM) may do anything. */
export function defaultKeyPolicy(account: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: 'kms:*', Resource: '*' }],
    },
    null,
    2,
  );
}

function policyOrThrow(text: string): KeyPolicy {
  try {
    return parsePolicy(text);
  } catch (e) {
    if (e instanceof PolicyError) throw new KmsError('MalformedPolicyDocumentException', e.message);
    throw e;
  }
}

/** Data key pairs: KMS's KeyPairSpec -> the WebCrypto key generation that makes it. */
const KEY_PAIR_SPECS: Record<string, RsaHashedKeyGenParams | EcKeyGenParams> = {
  RSA_2048: { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  RSA_3072: { name: 'RSA-OAEP', modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  RSA_4096: { name: 'RSA-OAEP', modulusLength: 4096, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  ECC_NIST_P256: { name: 'ECDSA', namedCurve: 'P-256' },
  ECC_NIST_P384: { name: 'ECDSA', namedCurve: 'P-384' },
  ECC_NIST_P521: { name: 'ECDSA', namedCurve: 'P-521' },
};

/** The operations this endpoint answers, by X-Amz-Target name (after `TrentService.`). */
export const KMS_OPERATIONS = [
  'CreateKey', 'DescribeKey', 'ListKeys', 'PutKeyPolicy', 'GetKeyPolicy', 'ListKeyPolicies', 'CreateAlias', 'ListAliases',
  'Encrypt', 'Decrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
  'GenerateRandom', 'EnableKey', 'DisableKey',
] as const;

export class KmsService {
  readonly account: string;
  readonly region: string;
  private readonly keys = new Map<string, KeyRecord>();
  private readonly aliases = new Map<string, AliasRecord>();
  private readonly options: KmsServiceOptions;
  private saving: Promise<void> = Promise.resolve();

  constructor(options: KmsServiceOptions) {
    if (options.trustRoots.length === 0) throw new RangeError('a KMS endpoint needs at least one trusted root for Recipient documents');
    this.options = options;
    this.account = options.account ?? '111122223333';
    this.region = options.region ?? 'us-east-1';
    if (!/^\d{12}$/.test(this.account)) throw new RangeError(`account '${this.account}' is not a 12-digit AWS account id`);
    if (options.state) this.load(options.state);
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  private keyArn(id: string): string {
    return `arn:aws:kms:${this.region}:${this.account}:key/${id}`;
  }

  private aliasArn(name: string): string {
    return `arn:aws:kms:${this.region}:${this.account}:${name}`;
  }

  private load(state: KmsStateJson): void {
    if (state.format !== 'nsm-emulator-kms/1' || !Array.isArray(state.keys) || !Array.isArray(state.aliases)) throw new Error("state: expected format 'nsm-emulator-kms/1' with keys and aliases");
    for (const k of state.keys) {
      if (!UUID.test(k.keyId)) throw new Error(`state: key id ${JSON.stringify(k.keyId)} is not a UUID`);
      const material = base64Decode(k.material);
      if (material.length !== 32) throw new Error(`state: key ${k.keyId} material is ${material.length} bytes, expected 32`);
      let policy: KeyPolicy;
      try {
        policy = parsePolicy(k.policy);
      } catch (e) {
        throw new Error(`state: key ${k.keyId} policy: ${(e as Error).message}`);
      }
      this.keys.set(k.keyId, { keyId: k.keyId, arn: this.keyArn(k.keyId), created: k.created, description: String(k.description ?? ''), policyText: k.policy, policy, enabled: k.enabled !== false, material });
    }
    for (const a of state.aliases) {
      if (!ALIAS.test(a.name) || !this.keys.has(a.keyId)) throw new Error(`state: alias ${JSON.stringify(a.name)} is invalid or names an unknown key`);
      this.aliases.set(a.name, { name: a.name, keyId: a.keyId, created: a.created, updated: a.created });
    }
  }

  /** The whole state, as persisted. */
  snapshot(): KmsStateJson {
    return {
      format: 'nsm-emulator-kms/1',
      keys: [...this.keys.values()].map((k) => ({ keyId: k.keyId, created: k.created, description: k.description, policy: k.policyText, enabled: k.enabled, material: base64Encode(k.material) })),
      aliases: [...this.aliases.values()].map((a) => ({ name: a.name, keyId: a.keyId, created: a.created })),
    };
  }

  private async changed(): Promise<void> {
    const save = this.options.onChange;
    if (!save) return;
    const state = this.snapshot();
    const next = this.saving.then(() => save(state));
    this.saving = next.catch(() => undefined);
    try {
      await next;
    } catch (e) {
      throw new KmsError('KMSInternalException', 'The state could not be saved', `saving state failed: ${(e as Error).message}`);
    }
  }

  private metadata(k: KeyRecord): Body {
    return {
      AWSAccountId: this.account,
      KeyId: k.keyId,
      Arn: k.arn,
      CreationDate: k.created / 1000,
      Enabled: k.enabled,
      Description: k.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: k.enabled ? 'Enabled' : 'Disabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    };
  }

  /** Resolves a KeyId (key id, key ARN, alias name or alias ARN) to its key. */
  private resolve(keyId: string): KeyRecord {
    let id = keyId;
    const arn = /^arn:aws:kms:([^:]*):(\d{12}):(.*)$/.exec(keyId);
    if (arn) {
      if (arn[1] !== this.region || arn[2] !== this.account) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`, `this endpoint holds region ${this.region}, account ${this.account}`);
      id = arn[3]!.startsWith('key/') ? arn[3]!.slice(4) : arn[3]!;
    } else if (keyId.startsWith('arn:')) {
      throw new KmsError('NotFoundException', `Invalid arn ${keyId}`);
    }
    if (id.startsWith('alias/')) {
      const a = this.aliases.get(id);
      if (!a) throw new KmsError('NotFoundException', `Alias ${this.aliasArn(id)} is not found.`);
      return this.keys.get(a.keyId)!;
    }
    if (!UUID.test(id)) throw new KmsError('NotFoundException', `Invalid keyId '${keyId}'`);
    const k = this.keys.get(id);
    if (!k) throw new KmsError('NotFoundException', `Key '${this.keyArn(id)}' does not exist`);
    return k;
  }

  private blobKey(k: KeyRecord): Promise<CryptoKey> {
    k.cryptoKey ??= importBlobKey(k.material);
    return k.cryptoKey;
  }

  private authorize(entry: { policy?: PolicyDecision }, caller: KmsCaller, action: string, k: KeyRecord, conditions: Map<string, string[]>): void {
    const ctx = new Map(conditions);
    ctx.set('kms:CallerAccount', [caller.account]);
    ctx.set('aws:PrincipalArn', [caller.principalArn]);
    ctx.set('aws:PrincipalAccount', [caller.account]);
    const decision = evaluatePolicy(k.policy, { action, principalArn: caller.principalArn, principalAccount: caller.account, resource: k.arn, context: ctx });
    entry.policy = decision;
    if (!decision.allowed) {
      const how = decision.outcome === 'explicit-deny' ? 'with an explicit deny in a resource-based policy' : 'because no resource-based policy allows the ' + action + ' action';
      throw new KmsError('AccessDeniedException', `User: ${caller.principalArn} is not authorized to perform: ${action} on resource: ${k.arn} ${how}`, decision.reason);
    }
  }

  private enabled(k: KeyRecord): void {
    if (!k.enabled) throw new KmsError('DisabledException', `${k.arn} is disabled.`);
  }

  private async recipient(entry: { recipient?: KmsLogEntry['recipient'] }, doc: Uint8Array | undefined): Promise<CheckedRecipient | undefined> {
    if (!doc) return undefined;
    const checked = await checkRecipientDocument(doc, { roots: this.options.trustRoots, ...(this.options.verifyTime === undefined ? {} : { time: this.options.verifyTime }) });
    const pcr0 = checked.document.pcrs.get(0);
    entry.recipient = { moduleId: checked.document.moduleId, pcr0: pcr0 ? bytesToHex(pcr0) : null };
    return checked;
  }

  private static conditions(recipient: CheckedRecipient | undefined, ctx?: EncryptionContext): Map<string, string[]> {
    const out = encryptionContextConditionKeys(ctx);
    if (recipient) for (const [k, v] of attestationConditionKeys(recipient.document)) out.set(k, v);
    return out;
  }

  private static async forRecipient(recipient: CheckedRecipient, secret: Uint8Array): Promise<string> {
    return base64Encode(await buildCiphertextForRecipient(recipient.key.spki, secret));
  }

  /**
   * Runs one operation. `body` is the parsed JSON request. Resolves to the JSON response body;
   * rejects with {@link KmsError}. Every call is reported to `log`.
   */
  async handle(operation: string, body: unknown, caller: KmsCaller): Promise<Body> {
    const entry: { -readonly [K in keyof KmsLogEntry]: KmsLogEntry[K] } = { operation, caller: caller.principalArn, outcome: 'ok' };
    try {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new KmsError('SerializationException', 'the request body must be a JSON object');
      const result = await this.dispatch(operation, body as Body, caller, entry);
      this.options.log?.(entry);
      return result;
    } catch (e) {
      const err = e instanceof KmsError ? e : new KmsError('KMSInternalException', 'An internal error occurred', `unexpected: ${(e as Error)?.stack ?? String(e)}`);
      entry.outcome = err.type;
      entry.message = err.message;
      if (err.detail !== undefined) entry.detail = err.detail;
      this.options.log?.(entry);
      throw err;
    }
  }

  private async dispatch(op: string, b: Body, caller: KmsCaller, entry: { -readonly [K in keyof KmsLogEntry]: KmsLogEntry[K] }): Promise<Body> {
    const key = (name = 'KeyId', required = true) => {
      const id = str(b, name, { required, max: 2048 });
      if (id === undefined) return undefined;
      const k = this.resolve(id);
      entry.keyId = k.keyId;
      return k;
    };
    switch (op) {
      case 'CreateKey': {
        const spec = str(b, 'KeySpec') ?? str(b, 'CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT';
        if (spec !== 'SYMMETRIC_DEFAULT') throw new KmsError('UnsupportedOperationException', `KeySpec ${spec} is not emulated; this endpoint makes SYMMETRIC_DEFAULT keys only`);
        const usage = str(b, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
        if (usage !== 'ENCRYPT_DECRYPT') throw new KmsError('ValidationException', `KeyUsage ${usage} is not valid for a SYMMETRIC_DEFAULT key`);
        const origin = str(b, 'Origin') ?? 'AWS_KMS';
        if (origin !== 'AWS_KMS') throw new KmsError('UnsupportedOperationException', `Origin ${origin} is not emulated`);
        if (b.MultiRegion === true) throw new KmsError('UnsupportedOperationException', 'multi-Region keys are not emulated');
        const description = str(b, 'Description', { min: 0, max: 8192 }) ?? '';
        const policyText = str(b, 'Policy', { max: 32768 }) ?? defaultKeyPolicy(this.account);
        const policy = policyOrThrow(policyText);
        if (this.keys.size >= KMS_LIMITS.keys) throw new KmsError('LimitExceededException', `this endpoint holds at most ${KMS_LIMITS.keys} keys`);
        const keyId = newUuid();
        const k: KeyRecord = { keyId, arn: this.keyArn(keyId), created: Math.floor(this.now() / 1000) * 1000, description, policyText, policy, enabled: true, material: crypto.getRandomValues(new Uint8Array(32)) };
        this.keys.set(keyId, k);
        entry.keyId = keyId;
        await this.changed();
        return { KeyMetadata: this.metadata(k) };
      }
      case 'DescribeKey': {
        const k = key()!;
        this.authorize(entry, caller, 'kms:DescribeKey', k, new Map());
        return { KeyMetadata: this.metadata(k) };
      }
      case 'ListKeys': {
        const limit = int(b, 'Limit', 1, 1000) ?? 100;
        const marker = str(b, 'Marker', { max: 1024 });
        const all = [...this.keys.values()];
        const start = marker === undefined ? 0 : Number.parseInt(marker, 10);
        if (!Number.isInteger(start) || start < 0 || start > all.length) throw new KmsError('ValidationException', `Marker '${marker}' is not valid`);
        const page = all.slice(start, start + limit);
        const truncated = start + limit < all.length;
        return { Keys: page.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })), Truncated: truncated, ...(truncated ? { NextMarker: String(start + limit) } : {}) };
      }
      case 'GetKeyPolicy': {
        const k = key()!;
        const name = str(b, 'PolicyName') ?? 'default';
        if (name !== 'default') throw new KmsError('NotFoundException', `Policy ${name} does not exist for key ${k.arn}; the only policy name is 'default'`);
        this.authorize(entry, caller, 'kms:GetKeyPolicy', k, new Map());
        return { Policy: k.policyText, PolicyName: 'default' };
      }
      case 'ListKeyPolicies': {
        const k = key()!;
        this.authorize(entry, caller, 'kms:ListKeyPolicies', k, new Map());
        return { PolicyNames: ['default'], Truncated: false };
      }
      case 'PutKeyPolicy': {
        const k = key()!;
        const name = str(b, 'PolicyName') ?? 'default';
        if (name !== 'default') validation('policyName', "Member must be 'default'");
        const text = str(b, 'Policy', { required: true, max: 32768 })!;
        const policy = policyOrThrow(text);
        this.authorize(entry, caller, 'kms:PutKeyPolicy', k, new Map());
        k.policyText = text;
        k.policy = policy;
        await this.changed();
        return {};
      }
      case 'EnableKey':
      case 'DisableKey': {
        const k = key()!;
        this.authorize(entry, caller, `kms:${op}`, k, new Map());
        k.enabled = op === 'EnableKey';
        await this.changed();
        return {};
      }
      case 'CreateAlias': {
        const name = str(b, 'AliasName', { required: true, max: 256 })!;
        if (!ALIAS.test(name)) validation('aliasName', 'Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$');
        if (name.startsWith('alias/aws/')) throw new KmsError('NotFoundException', `Cannot create alias with prefix 'alias/aws/'`);
        const k = key('TargetKeyId')!;
        this.authorize(entry, caller, 'kms:CreateAlias', k, new Map());
        if (this.aliases.has(name)) throw new KmsError('AlreadyExistsException', `An alias with the name ${this.aliasArn(name)} already exists`);
        if (this.aliases.size >= KMS_LIMITS.aliases) throw new KmsError('LimitExceededException', `this endpoint holds at most ${KMS_LIMITS.aliases} aliases`);
        const now = this.now();
        this.aliases.set(name, { name, keyId: k.keyId, created: now, updated: now });
        await this.changed();
        return {};
      }
      case 'ListAliases': {
        const k = key('KeyId', false);
        const limit = int(b, 'Limit', 1, 100) ?? 50;
        const marker = str(b, 'Marker', { max: 1024 });
        const all = [...this.aliases.values()].filter((a) => !k || a.keyId === k.keyId);
        const start = marker === undefined ? 0 : Number.parseInt(marker, 10);
        if (!Number.isInteger(start) || start < 0 || start > all.length) throw new KmsError('ValidationException', `Marker '${marker}' is not valid`);
        const page = all.slice(start, start + limit);
        const truncated = start + limit < all.length;
        return {
          Aliases: page.map((a) => ({ AliasName: a.name, AliasArn: this.aliasArn(a.name), TargetKeyId: a.keyId, CreationDate: a.created / 1000, LastUpdatedDate: a.updated / 1000 })),
          Truncated: truncated,
          ...(truncated ? { NextMarker: String(start + limit) } : {}),
        };
      }
      case 'Encrypt': {
        const k = key()!;
        const plaintext = blob(b, 'Plaintext', 'plaintext', 4096, true)!;
        const ctx = context(b);
        encryptionAlgorithm(b);
        this.authorize(entry, caller, 'kms:Encrypt', k, KmsService.conditions(undefined, ctx));
        this.enabled(k);
        const sealed = await sealBlob(await this.blobKey(k), k.keyId, plaintext, ctx);
        return { CiphertextBlob: base64Encode(sealed), KeyId: k.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      }
      case 'Decrypt': {
        const ciphertext = blob(b, 'CiphertextBlob', 'ciphertextBlob', 6144, true)!;
        const ctx = context(b);
        encryptionAlgorithm(b);
        const named = key('KeyId', false);
        const doc = recipientDocument(b);
        const id = blobKeyId(ciphertext);
        const k = id === null ? undefined : this.keys.get(id);
        if (!k) throw new KmsError('InvalidCiphertextException', '', id === null ? 'the blob is not an nsm-emulator ciphertext (wrong version or too short)' : `the blob names key ${id}, which this endpoint does not hold`);
        entry.keyId = k.keyId;
        if (named && named.keyId !== k.keyId) throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can perform this operation.', `KeyId names ${named.keyId}, the ciphertext was made with ${k.keyId}`);
        // Opening the blob does not depend on the document: it runs while the document is
        // verified, and its result is used only once the request is authorized.
        const opening = this.blobKey(k).then((key) => openBlob(key, ciphertext, ctx)).catch(() => null);
        const recipient = await this.recipient(entry, doc);
        this.authorize(entry, caller, 'kms:Decrypt', k, KmsService.conditions(recipient, ctx));
        this.enabled(k);
        const plain = await opening;
        if (!plain) throw new KmsError('InvalidCiphertextException', '', 'authentication failed: the ciphertext was altered or the encryption context differs from the one used to encrypt');
        const out: Body = { KeyId: k.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        if (recipient) out.CiphertextForRecipient = await KmsService.forRecipient(recipient, plain);
        else out.Plaintext = base64Encode(plain);
        return out;
      }
      case 'GenerateDataKey':
      case 'GenerateDataKeyWithoutPlaintext': {
        const k = key()!;
        const spec = str(b, 'KeySpec');
        const n = int(b, 'NumberOfBytes', 1, 1024);
        if (spec !== undefined && spec !== 'AES_256' && spec !== 'AES_128') validation('keySpec', 'Member must satisfy enum value set: [AES_256, AES_128]');
        if ((spec === undefined) === (n === undefined)) throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
        const ctx = context(b);
        const doc = op === 'GenerateDataKey' ? recipientDocument(b) : undefined;
        const recipient = await this.recipient(entry, doc);
        this.authorize(entry, caller, `kms:${op}`, k, KmsService.conditions(recipient, ctx));
        this.enabled(k);
        const plain = crypto.getRandomValues(new Uint8Array(n ?? (spec === 'AES_128' ? 16 : 32)));
        const out: Body = { CiphertextBlob: base64Encode(await sealBlob(await this.blobKey(k), k.keyId, plain, ctx)), KeyId: k.arn };
        if (op === 'GenerateDataKey') {
          if (recipient) out.CiphertextForRecipient = await KmsService.forRecipient(recipient, plain);
          else out.Plaintext = base64Encode(plain);
        }
        return out;
      }
      case 'GenerateDataKeyPair':
      case 'GenerateDataKeyPairWithoutPlaintext': {
        const k = key()!;
        const spec = str(b, 'KeyPairSpec', { required: true })!;
        const algorithm = KEY_PAIR_SPECS[spec];
        if (!algorithm) {
          if (['ECC_SECG_P256K1', 'SM2'].includes(spec)) throw new KmsError('UnsupportedOperationException', `KeyPairSpec ${spec} is not emulated (WebCrypto has no such curve)`);
          validation('keyPairSpec', `Member must satisfy enum value set: [${Object.keys(KEY_PAIR_SPECS).join(', ')}, ECC_SECG_P256K1, SM2]`);
        }
        const ctx = context(b);
        const doc = op === 'GenerateDataKeyPair' ? recipientDocument(b) : undefined;
        const recipient = await this.recipient(entry, doc);
        this.authorize(entry, caller, `kms:${op}`, k, KmsService.conditions(recipient, ctx));
        this.enabled(k);
        const pair = (await crypto.subtle.generateKey(algorithm!, true, algorithm!.name === 'ECDSA' ? ['sign', 'verify'] : ['encrypt', 'decrypt'])) as CryptoKeyPair;
        const privateKey = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
        const publicKey = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
        const out: Body = {
          PrivateKeyCiphertextBlob: base64Encode(await sealBlob(await this.blobKey(k), k.keyId, privateKey, ctx)),
          PublicKey: base64Encode(publicKey),
          KeyId: k.arn,
          KeyPairSpec: spec,
        };
        if (op === 'GenerateDataKeyPair') {
          if (recipient) out.CiphertextForRecipient = await KmsService.forRecipient(recipient, privateKey);
          else out.PrivateKeyPlaintext = base64Encode(privateKey);
        }
        return out;
      }
      case 'GenerateRandom': {
        const n = int(b, 'NumberOfBytes', 1, 1024);
        if (n === undefined) validation('numberOfBytes', 'Member must not be null');
        if (b.CustomKeyStoreId !== undefined) throw new KmsError('UnsupportedOperationException', 'custom key stores are not emulated');
        const recipient = await this.recipient(entry, recipientDocument(b));
        const plain = crypto.getRandomValues(new Uint8Array(n!));
        return recipient ? { CiphertextForRecipient: await KmsService.forRecipient(recipient, plain) } : { Plaintext: base64Encode(plain) };
      }
      default:
        throw new KmsError('UnknownOperationException', '', `operation '${op}' is not emulated (emulated: ${KMS_OPERATIONS.join(', ')})`);
    }
  }
}

/**
 * Reading an attestation document and applying the syntactic rules of AWS's verification
 * procedure, with the adjustments real documents need: tag 18 or untagged; definite or
 * indefinite payload map; optional fields written as null count as absent. Nothing here checks
 * signatures or certificates (see verify.ts).
 * @module
 */
import { type CborMap, type CborValue, CborDecodeError, decodeCbor, isCborNull } from '../wire/cbor-decode.js';
import { AttestationVerifyError, type VerifyRule } from './verify-error.js';

export interface AttestationDocument {
  readonly moduleId: string;
  readonly digest: string;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** PCR index -> value, in document order. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
  readonly certificate: Uint8Array;
  /** Root first, as in the document. */
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
  /** How the payload map was encoded (`a9` vs `bf ... ff`). */
  readonly payloadMap: 'definite' | 'indefinite';
  /** Whether the COSE_Sign1 carried tag 18. */
  readonly tagged: boolean;
  /** The raw payload and signature (r || s), for the signature check. */
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

export interface FieldLimits {
  readonly publicKey: number;
  readonly userData: number;
  readonly nonce: number;
}

/**
 * Largest optional fields accepted. AWS's prose rules say user_data and nonce up to 512 bytes,
 * its CDDL says 1024, and the device (and AWS's own on-hardware test) produces 1024; the
 * default accepts what the device can produce.
 */
export const DEVICE_FIELD_LIMITS: FieldLimits = { publicKey: 1024, userData: 1024, nonce: 1024 };
export const AWS_RULE_FIELD_LIMITS: FieldLimits = { publicKey: 1024, userData: 512, nonce: 512 };

/**
 * Cost caps, checked before any work that grows with them. AWS's CDDL bounds the payload to
 * 16384 bytes; the COSE envelope around it (tag, array, protected header, signature) needs well
 * under 256 more. A real chain has 4 cabundle entries; at most {@link CABUNDLE_MAX} are read.
 * Each certificate is 1..1024 bytes (AWS's rule), checked per field below.
 */
export const PAYLOAD_MAX_SIZE = 16384;
export const DOCUMENT_MAX_SIZE = PAYLOAD_MAX_SIZE + 256;
export const CABUNDLE_MAX = 8;
export const CERTIFICATE_MAX_SIZE = 1024;

/** How strictly a document is read. */
export interface ParseOptions {
  /**
   * Accept payload keys other than the nine AWS defines (default false: such a document fails
   * rule `payload.unknown-key`, as a verifier following AWS's procedure rejects it). For
   * forward compatibility with fields AWS may add.
   */
  readonly allowUnknownKeys?: boolean;
}

const fail = (rule: VerifyRule, message: string): never => {
  throw new AttestationVerifyError(rule, message);
};

function describe(v: CborValue): string {
  if (isCborNull(v)) return 'null';
  if (v.type === 'bytes') return `a byte string of ${v.value.length} bytes`;
  if (v.type === 'text') return 'a text string';
  if (v.type === 'uint' || v.type === 'nint') return 'an integer';
  return `a CBOR ${v.type}`;
}

function bytesField(rule: VerifyRule, name: string, v: CborValue, min: number, max: number): Uint8Array {
  if (v.type !== 'bytes') return fail(rule, `${name} must be a byte string, found ${describe(v)}`);
  if (v.value.length < min || v.value.length > max) return fail(rule, `${name} is ${v.value.length} bytes, expected ${min}..${max}`);
  return v.value;
}

const REQUIRED = ['module_id', 'digest', 'timestamp', 'pcrs', 'certificate', 'cabundle'] as const;
const OPTIONAL = ['public_key', 'user_data', 'nonce'] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set([...REQUIRED, ...OPTIONAL]);

/** Decodes a document and applies every syntactic rule; throws {@link AttestationVerifyError}. */
export function parseAttestationDocument(bytes: Uint8Array, limits: FieldLimits = DEVICE_FIELD_LIMITS, options: ParseOptions = {}): AttestationDocument {
  if (bytes.length === 0) return fail('cose.decode', 'the document is empty');
  if (bytes.length > DOCUMENT_MAX_SIZE) {
    return fail('cose.size', `the document is ${bytes.length} bytes; at most ${DOCUMENT_MAX_SIZE} are read (a ${PAYLOAD_MAX_SIZE}-byte payload, AWS's limit, and its COSE envelope)`);
  }
  let top: CborValue;
  try {
    top = decodeCbor(bytes);
  } catch (e) {
    return fail('cose.decode', e instanceof CborDecodeError ? `not a single CBOR item (${e.message})` : String(e));
  }
  let tagged = false;
  if (top.type === 'tag') {
    if (top.tag !== 18) fail('cose.tag', `tag ${top.tag} found; a COSE_Sign1 is untagged or tag 18`);
    tagged = true;
    top = top.value;
  }
  if (top.type !== 'array' || top.items.length !== 4) return fail('cose.structure', `expected a COSE_Sign1 array of 4 items, found ${describe(top)}`);
  const [prot, unprot, payloadItem, sig] = top.items as [CborValue, CborValue, CborValue, CborValue];

  if (prot.type !== 'bytes') fail('cose.protected', `protected header must be a byte string, found ${describe(prot)}`);
  let header: CborValue;
  try {
    header = decodeCbor((prot as { value: Uint8Array }).value);
  } catch {
    return fail('cose.protected', 'protected header is not CBOR');
  }
  if (header.type !== 'map') return fail('cose.protected', 'protected header must hold a map');
  const alg = header.entries.filter(([k]) => k.type === 'uint' && k.value === 1);
  if (alg.length !== 1 || alg[0]![1].type !== 'nint' || alg[0]![1].value !== -35) {
    fail('cose.protected', 'protected header must give alg (1) = -35 (ES384)');
  }
  if (unprot.type !== 'map') fail('cose.unprotected', `unprotected header must be a map, found ${describe(unprot)}`);
  if (payloadItem.type !== 'bytes') return fail('cose.payload', `payload must be a byte string, found ${describe(payloadItem)}`);
  if (sig.type !== 'bytes' || sig.value.length !== 96) {
    return fail('cose.signature-format', `signature must be a 96-byte byte string (ES384 r || s), found ${describe(sig)}`);
  }

  const payload = payloadItem.value;
  if (payload.length === 0 || payload.length > PAYLOAD_MAX_SIZE) fail('cose.payload', `payload is ${payload.length} bytes, expected 1..${PAYLOAD_MAX_SIZE} (AWS's limit)`);
  let map: CborValue;
  try {
    map = decodeCbor(payload);
  } catch (e) {
    return fail('payload.decode', `payload is not a single CBOR item (${(e as Error).message})`);
  }
  if (map.type !== 'map') return fail('payload.decode', `payload must be a map, found ${describe(map)}`);
  const fields = new Map<string, CborValue>();
  for (const [k, v] of (map as CborMap).entries) {
    if (k.type !== 'text') return fail('payload.keys', `payload keys must be text, found ${describe(k)}`);
    if (fields.has(k.value)) return fail('payload.keys', `key '${k.value}' appears twice`);
    if (!KNOWN_KEYS.has(k.value) && !options.allowUnknownKeys) {
      return fail('payload.unknown-key', `key ${JSON.stringify(k.value)} is not one of AWS's nine (${[...KNOWN_KEYS].join(', ')}); allow it with allowUnknownKeys (verify --allow-unknown-keys)`);
    }
    fields.set(k.value, v);
  }
  for (const key of REQUIRED) {
    const v = fields.get(key);
    if (v === undefined || isCborNull(v)) fail(`payload.${key}` as VerifyRule, `required key '${key}' is missing`);
  }

  const moduleId = fields.get('module_id')!;
  if (moduleId.type !== 'text' || moduleId.value.length === 0) fail('payload.module_id', `module_id must be non-empty text, found ${describe(moduleId)}`);
  const digest = fields.get('digest')!;
  if (digest.type !== 'text' || digest.value !== 'SHA384') fail('payload.digest', `digest must be the text "SHA384", found ${digest.type === 'text' ? JSON.stringify(digest.value) : describe(digest)}`);
  const ts = fields.get('timestamp')!;
  if (ts.type !== 'uint' || typeof ts.value !== 'number' || ts.value <= 0) fail('payload.timestamp', `timestamp must be an unsigned integer > 0 (milliseconds), found ${describe(ts)}`);

  const pcrsItem = fields.get('pcrs')!;
  if (pcrsItem.type !== 'map') return fail('payload.pcrs', `pcrs must be a map, found ${describe(pcrsItem)}`);
  if (pcrsItem.entries.length < 1 || pcrsItem.entries.length > 32) fail('payload.pcrs', `pcrs has ${pcrsItem.entries.length} entries, expected 1..32`);
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of pcrsItem.entries) {
    if (k.type !== 'uint' || typeof k.value !== 'number' || k.value >= 32) return fail('payload.pcrs', `PCR index must be an integer in 0..31, found ${describe(k)}`);
    if (pcrs.has(k.value)) fail('payload.pcrs', `PCR ${k.value} appears twice`);
    if (v.type !== 'bytes' || ![32, 48, 64].includes(v.value.length)) fail('payload.pcrs', `PCR ${k.value} must be 32, 48 or 64 bytes, found ${describe(v)}`);
    pcrs.set(k.value, (v as { value: Uint8Array }).value);
  }

  const certificate = bytesField('payload.certificate', 'certificate', fields.get('certificate')!, 1, CERTIFICATE_MAX_SIZE);
  const bundle = fields.get('cabundle')!;
  if (bundle.type !== 'array' || bundle.items.length === 0) return fail('payload.cabundle', `cabundle must be a non-empty array, found ${describe(bundle)}`);
  if (bundle.items.length > CABUNDLE_MAX) {
    return fail('payload.cabundle', `cabundle has ${bundle.items.length} entries; at most ${CABUNDLE_MAX} are read (real Nitro chains have 4)`);
  }
  const cabundle = bundle.items.map((c, i) => bytesField('payload.cabundle', `cabundle[${i}]`, c, 1, CERTIFICATE_MAX_SIZE));

  const optional = (key: (typeof OPTIONAL)[number], min: number, max: number): Uint8Array | null => {
    const v = fields.get(key);
    if (v === undefined || isCborNull(v)) return null;
    return bytesField(`payload.${key}` as VerifyRule, key, v, min, max);
  };

  return {
    moduleId: (moduleId as { value: string }).value,
    digest: 'SHA384',
    timestamp: (ts as { value: number }).value,
    pcrs,
    certificate,
    cabundle,
    publicKey: optional('public_key', 1, limits.publicKey),
    userData: optional('user_data', 0, limits.userData),
    nonce: optional('nonce', 0, limits.nonce),
    payloadMap: map.indefinite ? 'indefinite' : 'definite',
    tagged,
    payload,
    signature: sig.value,
  };
}

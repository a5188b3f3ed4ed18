/**
 * What `nitro-cli describe-eif` prints for an image, field for field: EifVersion, Measurements
 * (HashAlgorithm and the PCRs), IsSigned, SigningCertificate, CheckCRC, SignatureCheck,
 * ImageName, ImageVersion and Metadata (build metadata with the custom metadata merged in).
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeMetadata } from './metadata.js';
import type { EifMeasurement } from './measure.js';
import { type JsonValue, compareCodePoints, toPrettyJson } from './json-text.js';
import { oidLongName } from './oid-names.js';
import { type EifSignatureCheck, checkEifSignature } from './signature-check.js';
import type { EcdsaVerifier } from './cose-sign1.js';

/** nitro-cli prints the Rust Debug form of its sha2 hasher here. */
export const HASH_ALGORITHM_TEXT = 'Sha384 { ... }';

/** nitro-cli's `Measurements` map: HashAlgorithm, PCR0, PCR1, PCR2 and PCR8 when signed. */
export function measurementsJson(pcrs: EifMeasurement['pcrs']): Map<string, JsonValue> {
  const m = new Map<string, JsonValue>([
    ['HashAlgorithm', HASH_ALGORITHM_TEXT],
    ['PCR0', bytesToHex(pcrs.pcr0)],
    ['PCR1', bytesToHex(pcrs.pcr1)],
    ['PCR2', bytesToHex(pcrs.pcr2)],
  ]);
  if (pcrs.pcr8) m.set('PCR8', bytesToHex(pcrs.pcr8));
  return m;
}

/** A string as Rust's `{:?}` prints it, with the quote characters then removed (nitro-cli's IssuerName values). */
function rustDebugUnquoted(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\0') out += '\\0';
    else if (c < 0x20 || c === 0x7f) out += `\\u{${c.toString(16)}}`;
    else out += ch;
  }
  return out;
}

function certificateJson(c: EifSignatureCheck): Map<string, JsonValue> {
  const issuer = new Map<string, string>();
  for (const a of c.certificate.issuer) issuer.set(oidLongName(a.oid), rustDebugUnquoted(a.value));
  const sortedIssuer = new Map<string, JsonValue>([...issuer].sort(([a], [b]) => compareCodePoints(a, b)));
  return new Map<string, JsonValue>([
    ['IssuerName', sortedIssuer],
    ['Algorithm', oidLongName(c.certificate.signatureAlgorithmOid)],
    ['NotBefore', c.certificate.notBeforeText],
    ['NotAfter', c.certificate.notAfterText],
    ['Signature', Array.from(c.certificate.signature, (x) => x.toString(16).toUpperCase().padStart(2, '0')).join(':')],
  ]);
}

export interface EifDescription {
  /** The describe-eif JSON (Maps keep nitro-cli's key order). */
  readonly json: Map<string, JsonValue>;
  /** The signature check behind IsSigned/SignatureCheck (null when unsigned). */
  readonly signature: EifSignatureCheck | null;
  /** Problems a careful user should hear about (bad CRC, bad signature, expired certificate). */
  readonly problems: readonly string[];
}

/**
 * Describes a measured image (a signature is checked through `verify`, default @noble/curves:
 * see {@link EcdsaVerifier}). Throws {@link EifFormatError} `BAD_METADATA` for unreadable
 * metadata, as nitro-cli fails then too.
 */
export function describeEif(m: EifMeasurement, now: Date = new Date(), verify?: EcdsaVerifier): EifDescription {
  const problems: string[] = [];
  const json = new Map<string, JsonValue>([
    ['EifVersion', m.layout.header.version],
    ['Measurements', measurementsJson(m.pcrs)],
    ['IsSigned', m.signature !== null],
  ]);
  const sig = checkEifSignature(m, now, verify);
  if (sig) json.set('SigningCertificate', certificateJson(sig));
  json.set('CheckCRC', m.layout.crc.ok);
  if (!m.layout.crc.ok) {
    const h = (n: number) => n.toString(16).padStart(8, '0');
    problems.push(`CRC mismatch: the header (offset 0x220) holds ${h(m.layout.crc.stored)}, the image's CRC-32 is ${h(m.layout.crc.computed)}`);
  }
  if (sig) {
    json.set('SignatureCheck', sig.pcr0Matches);
    if (sig.signatureError) problems.push(sig.signatureError.message);
    else if (!sig.pcr0Matches) problems.push("the PCR0 signature does not sign this image's PCR0");
    if (sig.validity !== 'valid') problems.push(`the signing certificate is ${sig.validity === 'expired' ? 'expired' : 'not yet valid'} (valid ${sig.certificate.notBefore.toISOString()} to ${sig.certificate.notAfter.toISOString()})`);
  }
  if (m.layout.metadata) {
    const section = m.layout.sections.find((s) => s.type === 'metadata')!;
    const id = decodeMetadata(m.layout.metadata, section.dataOffset);
    json.set('ImageName', id.imageName);
    json.set('ImageVersion', id.imageVersion);
    const meta = new Map<string, JsonValue>([
      ['BuildTime', id.buildMetadata.buildTime],
      ['BuildTool', id.buildMetadata.buildTool],
      ['BuildToolVersion', id.buildMetadata.buildToolVersion],
      ['OperatingSystem', id.buildMetadata.operatingSystem],
      ['KernelVersion', id.buildMetadata.kernelVersion],
      ['DockerInfo', id.dockerInfo],
    ]);
    const custom = id.customMetadata;
    if (custom !== null && typeof custom === 'object' && !Array.isArray(custom) && !(custom instanceof Map)) {
      for (const k of Object.keys(custom).sort(compareCodePoints)) meta.set(k, (custom as Record<string, JsonValue>)[k]!);
    } else if (custom !== null) {
      problems.push('CustomMetadata is not a JSON object, so it is not shown (nitro-cli cannot print it either)');
    }
    json.set('Metadata', meta);
  }
  return { json, signature: sig, problems };
}

/** The description as nitro-cli prints it (pretty JSON, no trailing newline). */
export function describeEifText(d: EifDescription): string {
  return toPrettyJson(d.json);
}

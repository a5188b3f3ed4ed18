/**
 * Checking a signed EIF: the COSE_Sign1 in the first signature entry must verify with the
 * signing certificate's key, its payload is compared with `PcrInfo(0, computed PCR0)`, and the
 * certificate's validity period is compared with a given time.
 *
 * nitro-cli's describe-eif reports the payload comparison as `SignatureCheck`; run-enclave
 * insists on a good signature and a currently valid certificate. {@link assertEifSignature}
 * applies all three.
 * @module
 */
import { type SigningCertificate, parseCertificate } from './certificate.js';
import { type EcdsaVerifier, decodeCoseSign1, verifyCoseSign1 } from './cose-sign1.js';
import { EifSignatureError } from './errors.js';
import type { EifMeasurement } from './measure.js';
import { encodePcrInfo } from './signature-section.js';
import { cborMapGet, decodeCbor } from '../wire/cbor-decode.js';

function pcr0Of(payload: Uint8Array): Uint8Array | null {
  const p = decodePcrInfo(payload);
  return p && p.index === 0 ? p.value : null;
}

export interface EifSignatureCheck {
  readonly certificate: SigningCertificate;
  /** True when the COSE signature verifies with the certificate's key. */
  readonly signatureValid: boolean;
  /** Why it does not, when it does not. */
  readonly signatureError: EifSignatureError | null;
  /** The PCR0 the signature covers (null when the payload is not a PcrInfo for PCR0). */
  readonly signedPcr0: Uint8Array | null;
  /** True when the signature verifies and its payload is exactly PcrInfo(0, computed PCR0). */
  readonly pcr0Matches: boolean;
  /** The certificate's validity at `now`. */
  readonly validity: 'valid' | 'not-yet-valid' | 'expired';
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The register value of a `PcrInfo` payload for register 0, or null when it is not one. */
export function decodePcrInfo(payload: Uint8Array): { index: number; value: Uint8Array } | null {
  let v;
  try {
    v = decodeCbor(payload, { maxDepth: 4 });
  } catch {
    return null;
  }
  if (v.type !== 'map') return null;
  const index = cborMapGet(v, 'register_index');
  const value = cborMapGet(v, 'register_value');
  if (!index || (index.type !== 'uint' && index.type !== 'nint') || typeof index.value !== 'number') return null;
  if (!value || value.type !== 'array') return null;
  const out = new Uint8Array(value.items.length);
  for (let i = 0; i < out.length; i++) {
    const it = value.items[i]!;
    if (it.type !== 'uint' || typeof it.value !== 'number' || it.value > 255) return null;
    out[i] = it.value;
  }
  return { index: index.value, value: out };
}

/**
 * Checks a measured image's signature (ECDSA through `verify`, default @noble/curves: see
 * {@link EcdsaVerifier}). Returns null for an unsigned image.
 */
export function checkEifSignature(m: EifMeasurement, now: Date = new Date(), verify?: EcdsaVerifier): EifSignatureCheck | null {
  if (!m.signature) return null;
  const certificate = parseCertificate(m.signature.certificateDer);
  let signatureError: EifSignatureError | null = null;
  let payload: Uint8Array | null = null;
  try {
    const cose = decodeCoseSign1(m.signature.entries[0]!.signature);
    if (!certificate.publicKey) throw new EifSignatureError('UNSUPPORTED_ALGORITHM', 'the signing certificate key is not an EC key on P-256, P-384 or P-521');
    verifyCoseSign1(cose, certificate.publicKey, verify);
    payload = cose.payload;
  } catch (e) {
    if (!(e instanceof EifSignatureError)) throw e;
    signatureError = e;
  }
  const pcr0Matches = payload !== null && equal(payload, encodePcrInfo(0, m.pcrs.pcr0));
  const t = now.getTime();
  return {
    certificate,
    signatureValid: signatureError === null,
    signatureError,
    signedPcr0: payload && pcr0Of(payload),
    pcr0Matches,
    validity: t < certificate.notBefore.getTime() ? 'not-yet-valid' : t > certificate.notAfter.getTime() ? 'expired' : 'valid',
  };
}

/**
 * Throws {@link EifSignatureError} unless a signed image's signature verifies (through `verify`,
 * as {@link checkEifSignature}), signs the computed PCR0, and its certificate is valid at `now`.
 * Unsigned images pass.
 */
export function assertEifSignature(m: EifMeasurement, now: Date = new Date(), verify?: EcdsaVerifier): void {
  const c = checkEifSignature(m, now, verify);
  if (!c) return;
  if (c.signatureError) throw c.signatureError;
  if (!c.pcr0Matches) throw new EifSignatureError('PCR0_MISMATCH', 'the PCR0 signature does not sign this image\'s PCR0');
  if (c.validity === 'not-yet-valid') throw new EifSignatureError('CERTIFICATE_NOT_YET_VALID', `the signing certificate is not valid before ${c.certificate.notBefore.toISOString()}`);
  if (c.validity === 'expired') throw new EifSignatureError('CERTIFICATE_EXPIRED', `the signing certificate expired at ${c.certificate.notAfter.toISOString()}`);
}

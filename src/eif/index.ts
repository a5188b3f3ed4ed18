/**
 * The EIF module's public surface: read, measure, check, describe, build and boot from
 * Enclave Image Format files, on any runtime.
 * @module
 */
export * from './format.js';
export { EifFormatError, EifSignatureError, EifBuildError, type EifFormatErrorCode, type EifSignatureErrorCode, type EifBuildErrorCode } from './errors.js';
export { type EifSource, type SizedSource } from './source.js';
export { readEif, type EifLayout, type EifReadOptions } from './reader.js';
export { measureEif, type EifMeasurement, type EifMeasureOptions, type EifPcrs, type EifByteRange } from './measure.js';
export { checkEifSignature, assertEifSignature, type EifSignatureCheck } from './signature-check.js';
export { nobleEcdsaVerifier, type EcdsaVerifier } from './cose-sign1.js';
export { describeEif, describeEifText, measurementsJson, type EifDescription } from './describe.js';
export { buildEif, buildEifBytes, type BuiltEif, type EifBuildOptions, type EifInput, type EifSigning } from './writer.js';
export { encodeMetadata, decodeMetadata, type EifIdentity, type EifBuildMetadata } from './metadata.js';
export { eifBootProfile, parentRolePcr, parentInstancePcr, type EifBootParent, type EifBootProfile } from './boot-profile.js';
export { crc32, crc32Combine, crc32Accumulator, type Crc32Function, type Crc32Accumulator } from './crc32.js';
export { nobleSha384, extendFromZero, type Sha384Factory, type Sha384Hasher } from './hash.js';
export { certificateDerFromPem, parseCertificate, type SigningCertificate } from './certificate.js';
export { encodePcrInfo, encodeSignatureSection, decodeSignatureSection, type PcrSignatureEntry } from './signature-section.js';

/**
 * nsm-emulator: the public surface of the runtime-agnostic core (no Node-only APIs here;
 * Node-only helpers such as file loaders and servers are under `nsm-emulator/node`).
 * @module
 */
export { NsmDevice, type NsmDeviceOptions, type InternalErrorEvent } from './device/nsm-device.js';
export type { Nsm, AttestationOptions, PcrDescription } from './device/nsm.js';
export {
  FaultPlan, NsmDeviceGoneError, FaultSyntaxError, parseFault, FAULT_REQUESTS, FAULT_ERROR_CODES, FAULT_DELAY_MAX_MS,
  type NsmFault, type FaultEffect, type FaultEvent, type FaultDecision, type FaultErrorCode,
} from './device/faults.js';
export { type BootMode, SYNTHETIC_IMAGE_CMDLINE, syntheticImageSections, syntheticImagePcrs } from './device/enclave-boot.js';
export { NsmError, ERROR_CODES, errorCodeNumber, type ErrorCode } from './device/error-code.js';
export { PcrBank, extendDigest, type PcrValue } from './device/pcr-bank.js';
export { nobleDeviceSha384, type DeviceSha384 } from './device/sha384.js';
export { SeededRandom, systemRandom, type RandomSource } from './device/random.js';
export type { Attester, AttesterEnv, AttesterFactory, AttestationInput } from './device/attester.js';
export * as limits from './device/limits.js';
export type { NsmRequest, NsmResponse, NsmDescription, NsmRequestType } from './wire/messages.js';
export { decodeRequest, type DecodedRequest } from './wire/decode-request.js';
export { encodeResponse } from './wire/encode-response.js';
export { encodeRequest } from './wire/encode-request.js';
export { decodeResponse, ResponseDecodeError } from './wire/decode-response.js';
export { CborWriter } from './wire/cbor-encode.js';
export { decodeCbor, decodeCborItem, CborDecodeError, type CborValue } from './wire/cbor-decode.js';
export {
  measureEif, readEif, describeEif, describeEifText, buildEif, buildEifBytes,
  eifBootProfile, parentRolePcr, parentInstancePcr, checkEifSignature, assertEifSignature, nobleEcdsaVerifier,
  encodeMetadata, decodeMetadata, EifFormatError, EifSignatureError, EifBuildError,
  type EifMeasurement, type EifPcrs, type EifLayout, type EifHeader, type EifSection, type EifSource,
  type SizedSource, type EifBuildOptions, type BuiltEif, type EifSigning, type EifInput, type EifIdentity,
  type EifBootParent, type EifBootProfile, type EifSignatureCheck, type EifDescription,
  type EifFormatErrorCode, type EifSignatureErrorCode, type EifBuildErrorCode, type EcdsaVerifier,
} from './eif/index.js';
export * from './virtio/index.js';
export * from './vfio-user/index.js';
export * from './attestation/index.js';
export { DerError } from './x509/der.js';
export { VERSION } from './version.js';
export * from './inspector/index.js';
export * from './kms/index.js';
export { loadNistCurves, NistCurvesNotLoadedError } from './x509/nist-curves.js';

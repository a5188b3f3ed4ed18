/**
 * Kept for src/cli/attest.ts and src/cli/verify.ts, which import base64 helpers from here: the
 * PEM and base64 code itself is src/x509/pem.ts.
 * @module
 */
export { PemError, base64Decode, base64Encode, pemDecode, pemEncode } from '../x509/pem.js';

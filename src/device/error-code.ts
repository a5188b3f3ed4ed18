/**
 * NSM error codes, named as they travel on the wire (`{"Error": "<Name>"}`).
 *
 * The numbering is the `#[repr(C)]` order of nsm-api's `ErrorCode` enum, which nsm-lib's C
 * constants share. `Success`, `InvalidResponse` and `BufferTooSmall` exist in that enum but
 * are produced by client libraries, never by the device.
 * @module
 */

export const ERROR_CODES = [
  'Success',
  'InvalidArgument',
  'InvalidIndex',
  'InvalidResponse',
  'ReadOnlyIndex',
  'InvalidOperation',
  'BufferTooSmall',
  'InputTooLarge',
  'InternalError',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The numeric value nsm-lib returns for a code. */
export function errorCodeNumber(code: ErrorCode): number {
  return ERROR_CODES.indexOf(code);
}

/** Thrown by the typed device API when the device answers `{"Error": code}`. */
export class NsmError extends Error {
  override readonly name: string = 'NsmError';
  constructor(readonly code: ErrorCode) {
    super(`NSM error: ${code}`);
  }
}

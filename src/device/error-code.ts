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

/**
 * Thrown by the typed device API when the device answers `{"Error": code}`. For `InternalError`
 * the emulated device knows why (a clock outside the CA's validity, a failing attester, a reset
 * that dropped the request...): that reason is `cause`, and its text ends the message.
 */
export class NsmError extends Error {
  override readonly name: string = 'NsmError';
  constructor(
    readonly code: ErrorCode,
    options?: { cause?: unknown },
  ) {
    const why = options?.cause instanceof Error ? `: ${describeReason(options.cause)}` : '';
    super(`NSM error: ${code}${why}`, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** One line saying why: `Name: message` (just the message for a plain Error). */
export function describeReason(reason: Error): string {
  const name = reason.name && reason.name !== 'Error' ? `${reason.name}: ` : '';
  return `${name}${reason.message}`.replace(/\s*\n\s*/g, ' ');
}

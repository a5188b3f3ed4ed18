/**
 * The errors of the EIF module. A malformed image raises {@link EifFormatError} with a stable
 * `code` and the file offset where the problem is; a signature that fails to check raises
 * {@link EifSignatureError}; bad builder input raises {@link EifBuildError}.
 * @module
 */

export type EifFormatErrorCode =
  | 'TRUNCATED_HEADER'
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'RESERVED_FLAGS'
  | 'TOO_MANY_SECTIONS'
  | 'SECTION_OFFSET_MISMATCH'
  | 'SECTION_BEYOND_FILE'
  | 'TRUNCATED_SECTION'
  | 'SECTION_SIZE_MISMATCH'
  | 'SECTION_FLAGS'
  | 'UNKNOWN_SECTION_TYPE'
  | 'DUPLICATE_SECTION'
  | 'RAMDISK_BEFORE_KERNEL'
  | 'MISSING_KERNEL'
  | 'MISSING_CMDLINE'
  | 'MISSING_RAMDISK'
  | 'MISSING_METADATA'
  | 'TRAILING_DATA'
  | 'BAD_CRC'
  | 'SIGNATURE_TOO_LARGE'
  | 'BAD_SIGNATURE_SECTION'
  | 'BAD_CERTIFICATE'
  | 'METADATA_TOO_LARGE'
  | 'BAD_METADATA';

/** The image does not follow the format. `offset` is the file offset of the problem. */
export class EifFormatError extends Error {
  override readonly name = 'EifFormatError';
  constructor(
    readonly code: EifFormatErrorCode,
    readonly offset: number,
    detail: string,
  ) {
    super(`${detail} (at offset ${offset} = 0x${offset.toString(16)})`);
  }
}

export type EifSignatureErrorCode =
  | 'BAD_COSE'
  | 'UNSUPPORTED_ALGORITHM'
  | 'BAD_SIGNATURE'
  | 'PCR0_MISMATCH'
  | 'CERTIFICATE_NOT_YET_VALID'
  | 'CERTIFICATE_EXPIRED';

/** A signed image whose PCR0 signature or signing certificate does not check. */
export class EifSignatureError extends Error {
  override readonly name = 'EifSignatureError';
  constructor(
    readonly code: EifSignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type EifBuildErrorCode = 'BAD_CMDLINE' | 'BAD_PRIVATE_KEY' | 'BAD_CERTIFICATE' | 'KEY_MISMATCH' | 'TOO_MANY_SECTIONS' | 'NO_RAMDISK' | 'BAD_METADATA' | 'INPUT_CHANGED';

/** Input that the builder refuses. */
export class EifBuildError extends Error {
  override readonly name = 'EifBuildError';
  constructor(
    readonly code: EifBuildErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * KMS errors as the JSON 1.1 protocol carries them: an exception name (`__type`), a message and
 * an HTTP status. The names are AWS KMS's own, so SDK code paths see what they would see.
 * @module
 */

/** Exception names this emulator answers with (all of them AWS KMS's). */
export type KmsErrorType =
  | 'AccessDeniedException'
  | 'NotFoundException'
  | 'AlreadyExistsException'
  | 'InvalidCiphertextException'
  | 'IncorrectKeyException'
  | 'InvalidKeyUsageException'
  | 'DisabledException'
  | 'ValidationException'
  | 'SerializationException'
  | 'UnsupportedOperationException'
  | 'UnknownOperationException'
  | 'MalformedPolicyDocumentException'
  | 'InvalidAliasNameException'
  | 'InvalidArnException'
  | 'LimitExceededException'
  | 'UnrecognizedClientException'
  | 'InvalidSignatureException'
  | 'IncompleteSignatureException'
  | 'MissingAuthenticationTokenException'
  | 'KMSInternalException';

/** A request KMS refuses: `type` is the exception name, `status` the HTTP code. */
export class KmsError extends Error {
  override readonly name = 'KmsError';
  readonly status: number;
  constructor(
    readonly type: KmsErrorType,
    message: string,
    /** Why, in more detail than KMS itself says (the endpoint's log prints it). */
    readonly detail?: string,
  ) {
    super(message);
    this.status = type === 'KMSInternalException' ? 500 : 400;
  }
}

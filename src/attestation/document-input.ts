/**
 * Reading an attestation document as people hand it over: the raw CBOR bytes, or text holding
 * them as hex (spaces and a 0x allowed) or base64 / base64url. Runtime-agnostic, so the CLI and
 * the inspector page accept the same inputs.
 * @module
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { base64Decode } from '../x509/pem.js';

/** The input is none of raw CBOR, hex or base64. */
export class DocumentInputError extends Error {
  override readonly name = 'DocumentInputError';
}

const HEX = /^(?:0[xX])?((?:[0-9a-fA-F]{2})+)$/;

/**
 * The document bytes in `input`. Bytes starting 84 (an array of four) or d2 (tag 18) are taken
 * as raw CBOR; anything else is read as hex, then as base64 or base64url.
 */
export function decodeDocumentInput(input: Uint8Array | string): Uint8Array {
  if (typeof input !== 'string') {
    if (input.length === 0) throw new DocumentInputError('the input is empty');
    if (input[0] === 0x84 || input[0] === 0xd2) return input;
    input = new TextDecoder('utf-8', { fatal: false }).decode(input);
  }
  const compact = input.replace(/\s+/g, '');
  if (compact.length === 0) throw new DocumentInputError('the input is empty');
  const hex = HEX.exec(compact);
  if (hex) return hexToBytes(hex[1]!);
  try {
    const bytes = base64Decode(compact);
    if (bytes.length > 0) return bytes;
  } catch {
    /* reported below */
  }
  throw new DocumentInputError('expected an attestation document as raw CBOR (starting 84 or d2), hex or base64');
}

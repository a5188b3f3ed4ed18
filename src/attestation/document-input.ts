/**
 * Reading an attestation document as people hand it over: the raw CBOR bytes, text holding them
 * as hex (spaces and a 0x allowed) or base64 / base64url, or the device's whole answer to an
 * Attestation request (raw CBOR, hex, or the JSON that `nsm-emulator rpc --json` prints), from
 * which the document is taken. Runtime-agnostic, so the CLI and the inspector page accept the
 * same inputs.
 * @module
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { decodeResponse } from '../wire/decode-response.js';
import { base64Decode } from '../x509/pem.js';

/** The input is none of the forms above. */
export class DocumentInputError extends Error {
  override readonly name = 'DocumentInputError';
  constructor(
    message: string,
    /** What hex or base64 text decoded to when that was not a document (a verifier can name why). */
    readonly decoded: Uint8Array | null = null,
  ) {
    super(message);
  }
}

const HEX = /^(?:0[xX])?((?:[0-9a-fA-F]{2})+)$/;
const EXPECTED = 'expected an attestation document as raw CBOR (starting 84 or d2), hex or base64';

/** A COSE_Sign1 is an array of four (84), tagged 18 (d2) or not. */
const isCoseSign1 = (b: Uint8Array) => b[0] === 0x84 || b[0] === 0xd2;

/** The document inside the device's answer `{"Attestation":{"document":…}}`, if `bytes` is one. */
function fromResponse(bytes: Uint8Array): Uint8Array | null {
  if (bytes[0] !== 0xa1) return null;
  try {
    const r = decodeResponse(bytes);
    return r.type === 'Attestation' ? r.document : null;
  } catch {
    return null;
  }
}

function fromJson(text: string): Uint8Array | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const doc = (value as { Attestation?: { document?: unknown } } | null)?.Attestation?.document;
  if (typeof doc !== 'string') return null;
  const hex = HEX.exec(doc);
  return hex ? hexToBytes(hex[1]!) : null;
}

function checked(bytes: Uint8Array, form: string): Uint8Array {
  if (isCoseSign1(bytes)) return bytes;
  const inner = fromResponse(bytes);
  if (inner) return inner;
  const start = bytes.subarray(0, 4).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '');
  throw new DocumentInputError(`the ${form} decodes to ${bytes.length} bytes starting ${start}, not a COSE_Sign1 (84 or d2); ${EXPECTED}`, bytes);
}

/**
 * The document bytes in `input`. Bytes starting 84 (an array of four) or d2 (tag 18) are taken
 * as raw CBOR, and a raw Attestation answer is unwrapped; anything else is read as text: the
 * JSON of an Attestation answer, hex, then base64 or base64url, whose bytes must again be a
 * document or an Attestation answer.
 */
export function decodeDocumentInput(input: Uint8Array | string): Uint8Array {
  if (typeof input !== 'string') {
    if (input.length === 0) throw new DocumentInputError('the input is empty');
    if (isCoseSign1(input)) return input;
    const inner = fromResponse(input);
    if (inner) return inner;
    input = new TextDecoder('utf-8', { fatal: false }).decode(input);
  }
  const trimmed = input.trim();
  if (trimmed.length === 0) throw new DocumentInputError('the input is empty');
  if (trimmed.startsWith('{')) {
    const doc = fromJson(trimmed);
    if (doc) return checked(doc, 'JSON answer');
    throw new DocumentInputError(`JSON input must be an Attestation answer {"Attestation":{"document":"<hex>"}}; ${EXPECTED}`);
  }
  const compact = trimmed.replace(/\s+/g, '');
  const hex = HEX.exec(compact);
  if (hex) return checked(hexToBytes(hex[1]!), 'hex');
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(compact);
  } catch {
    throw new DocumentInputError(EXPECTED);
  }
  if (bytes.length === 0) throw new DocumentInputError(EXPECTED);
  return checked(bytes, 'base64');
}

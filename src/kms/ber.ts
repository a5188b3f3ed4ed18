/**
 * A small BER (X.690) reader and the two BER forms the CMS writer needs. KMS sends
 * CiphertextForRecipient in BER: indefinite lengths on the outer layers and the encrypted
 * content as a constructed OCTET STRING in chunks, which a DER-only reader refuses.
 *
 * Every length is checked against its container before it is used, and nesting is bounded.
 * @module
 */
import { concatBytes } from '@noble/hashes/utils.js';

/** Bytes that are not the BER expected. */
export class BerError extends Error {
  override readonly name = 'BerError';
}

export interface BerNode {
  /** The identifier octet (class, constructed bit, tag number below 31). */
  readonly tag: number;
  readonly constructed: boolean;
  /** Primitive contents (empty for constructed nodes). */
  readonly value: Uint8Array;
  /** Children of a constructed node, in order. */
  readonly children: readonly BerNode[];
}

const MAX_DEPTH = 32;

function readNode(bytes: Uint8Array, offset: number, end: number, depth: number): { node: BerNode; next: number } {
  if (depth > MAX_DEPTH) throw new BerError(`nesting deeper than ${MAX_DEPTH} at offset ${offset}`);
  let p = offset;
  if (p + 2 > end) throw new BerError(`truncated element at offset ${offset}`);
  const tag = bytes[p++]!;
  if ((tag & 0x1f) === 0x1f) throw new BerError(`multi-byte tag at offset ${offset}`);
  const constructed = (tag & 0x20) !== 0;
  let len = bytes[p++]!;
  let indefinite = false;
  if (len === 0x80) {
    if (!constructed) throw new BerError(`indefinite length on a primitive element at offset ${offset}`);
    indefinite = true;
  } else if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new BerError(`length of ${n} bytes at offset ${offset}`);
    if (p + n > end) throw new BerError(`truncated length at offset ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p++]!;
  }
  if (!indefinite && len > end - p) throw new BerError(`length ${len} at offset ${offset} runs past its container`);
  if (!constructed) return { node: { tag, constructed, value: bytes.subarray(p, p + len), children: [] }, next: p + len };
  const children: BerNode[] = [];
  const stop = indefinite ? end : p + len;
  for (;;) {
    if (indefinite) {
      if (p + 2 > stop) throw new BerError(`missing end-of-contents for the element at offset ${offset}`);
      if (bytes[p] === 0 && bytes[p + 1] === 0) return { node: { tag, constructed, value: new Uint8Array(0), children }, next: p + 2 };
    } else if (p === stop) {
      return { node: { tag, constructed, value: new Uint8Array(0), children }, next: p };
    }
    const { node, next } = readNode(bytes, p, stop, depth + 1);
    children.push(node);
    p = next;
  }
}

/** Reads a buffer that must hold exactly one BER element. */
export function readBer(bytes: Uint8Array, what: string): BerNode {
  const { node, next } = readNode(bytes, 0, bytes.length, 0);
  if (next !== bytes.length) throw new BerError(`${what}: ${bytes.length - next} bytes after the end`);
  return node;
}

/** The bytes of a string type, primitive or constructed from chunks of the same type. */
export function berStringBytes(node: BerNode, universalTag: number, what: string): Uint8Array {
  if (!node.constructed) return node.value;
  const parts = node.children.map((c) => {
    if ((c.tag & 0xdf) !== universalTag) throw new BerError(`${what}: a chunk has tag 0x${c.tag.toString(16)}, expected 0x${universalTag.toString(16)}`);
    return berStringBytes(c, universalTag, what);
  });
  return concatBytes(...parts);
}

/** A constructed element with indefinite length: tag, 80, the contents, then 00 00. */
export function berIndefinite(tag: number, ...contents: Uint8Array[]): Uint8Array {
  return concatBytes(new Uint8Array([tag, 0x80]), ...contents, new Uint8Array([0, 0]));
}

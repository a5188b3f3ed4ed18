/**
 * A strict DER (X.690) reader for untrusted certificates and keys: every length is checked
 * against its container before use, and each {@link DerNode} keeps the exact bytes it came
 * from, because signatures cover exactly those bytes. The one DER reader of the package.
 * @module
 */

/** Universal tags used by certificates and keys. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag `[n]`, constructed or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

/** Thrown for bytes that are not the DER expected. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One element as read: its tag, contents and the exact bytes it occupied. */
export interface DerNode {
  /** The whole identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  /** The contents (after tag and length), a view into the input. */
  readonly value: Uint8Array;
  /** Tag, length and contents, as they appeared in the input. */
  readonly raw: Uint8Array;
}

/** Reads one element at `offset`; returns it and the offset after it. */
export function readDer(bytes: Uint8Array, offset = 0): { node: DerNode; end: number } {
  let p = offset;
  if (p + 2 > bytes.length) throw new DerError(`truncated element at offset ${offset}`);
  const tag = bytes[p++]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${offset}`);
  let len = bytes[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError(`unsupported length form at offset ${offset}`);
    if (p + n > bytes.length) throw new DerError(`truncated length at offset ${offset}`);
    if (bytes[p] === 0) throw new DerError(`non-minimal length at offset ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p++]!;
    if (len < 0x80) throw new DerError(`non-minimal length at offset ${offset}`);
  }
  if (len > bytes.length - p) throw new DerError(`length ${len} at offset ${offset} runs past the end`);
  const end = p + len;
  return { node: { tag, value: bytes.subarray(p, end), raw: bytes.subarray(offset, end) }, end };
}

/** Reads a buffer that must hold exactly one element. */
export function readDerExact(bytes: Uint8Array, what: string): DerNode {
  const { node, end } = readDer(bytes, 0);
  if (end !== bytes.length) throw new DerError(`${what}: ${bytes.length - end} bytes after the end`);
  return node;
}

/** The elements inside a constructed node. */
export function derChildren(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new DerError(`element with tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  let p = 0;
  while (p < node.value.length) {
    const { node: child, end } = readDer(node.value, p);
    out.push(child);
    p = end;
  }
  return out;
}

/** Checks a node's tag; `what` names it in the error. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) throw new DerError(`${what}: missing`);
  if (node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  return node;
}

/** Dotted text of an OBJECT IDENTIFIER's contents. */
export function oidText(value: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (const b of value) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  if (arcs.length === 0) return '';
  const first = arcs[0]!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A non-negative INTEGER's magnitude without leading zeros; rejects negative and non-minimal forms. */
export function unsignedValue(node: DerNode, what: string): Uint8Array {
  const v = node.value;
  if (v.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (v[0]! & 0x80) throw new DerError(`${what}: negative INTEGER`);
  if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new DerError(`${what}: non-minimal INTEGER`);
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** The contents of a BIT STRING with no unused bits. */
export function bitStringBytes(node: DerNode | undefined, what: string): Uint8Array {
  const v = expectTag(node, TAG.BIT_STRING, what).value;
  if (v.length === 0 || v[0] !== 0) throw new DerError(`${what}: expected a BIT STRING with no unused bits`);
  return v.subarray(1);
}

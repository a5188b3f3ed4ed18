/**
 * DER (X.690) in the small: the handful of ASN.1 types that X.509 certificates and PKCS#8 keys
 * of the test CA need, written byte-exactly, and a strict reader for untrusted certificates.
 *
 * The writer builds a value bottom-up (`der(tag, ...children)`), so every length is known when
 * its header is written. The reader hands out {@link DerNode}s that keep the raw bytes of every
 * element, because signatures are computed over exactly those bytes.
 * @module
 */

/** Universal and context tags used here. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tag `[n]`, constructed or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One element: tag, definite length, then the concatenated contents. */
export function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of contents) size += c.length;
  const head = lengthBytes(size);
  const out = new Uint8Array(1 + head.length + size);
  out[0] = tag;
  out.set(head, 1);
  let o = 1 + head.length;
  for (const c of contents) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const derSequence = (...items: Uint8Array[]): Uint8Array => der(TAG.SEQUENCE, ...items);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 00 when the top bit is set). */
export function derUnsigned(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  if (m.length === 0) return der(TAG.INTEGER, new Uint8Array([0]));
  return m[0]! & 0x80 ? der(TAG.INTEGER, new Uint8Array([0]), m) : der(TAG.INTEGER, m);
}

/** A small non-negative INTEGER. */
export function derSmallInt(n: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return derUnsigned(new Uint8Array(bytes.length ? bytes : [0]));
}

export function derBoolean(b: boolean): Uint8Array {
  return der(TAG.BOOLEAN, new Uint8Array([b ? 0xff : 0x00]));
}

/** BIT STRING with no unused bits. */
export function derBitString(bytes: Uint8Array): Uint8Array {
  return der(TAG.BIT_STRING, new Uint8Array([0]), bytes);
}

export function derOctetString(bytes: Uint8Array): Uint8Array {
  return der(TAG.OCTET_STRING, bytes);
}

/** OBJECT IDENTIFIER from dotted text. */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const body: number[] = [];
  const first = arcs[0]! * 40 + arcs[1]!;
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    body.push(...chunk);
  }
  return der(TAG.OID, new Uint8Array(body));
}

const utf8 = new TextEncoder();

export function derString(tag: number, s: string): Uint8Array {
  return der(tag, utf8.encode(s));
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** UTCTime for years 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5); whole seconds, Z. */
export function derTime(seconds: number): Uint8Array {
  const d = new Date(seconds * 1000);
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derString(TAG.UTC_TIME, `${pad2(y % 100)}${rest}`);
  return derString(TAG.GENERALIZED_TIME, `${String(y).padStart(4, '0')}${rest}`);
}

// ---- reading ----------------------------------------------------------------------------------

/** Thrown for bytes that are not the DER this module expects. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

/** One element as read: its tag, contents and the exact bytes it occupied. */
export interface DerNode {
  readonly tag: number;
  /** The contents (after tag and length). */
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
    if (n === 0 || n > 3) throw new DerError(`unsupported length form at offset ${offset}`);
    if (p + n > bytes.length) throw new DerError(`truncated length at offset ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[p++]!;
    if (len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1)))) throw new DerError(`non-minimal length at offset ${offset}`);
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

/** Milliseconds since the epoch of a UTCTime or GeneralizedTime in the `...Z` form RFC 5280 requires. */
export function timeValue(node: DerNode, what: string): number {
  const s = new TextDecoder().decode(node.value);
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw new DerError(`${what}: '${s}' is not a UTCTime or GeneralizedTime of the form RFC 5280 requires`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw new DerError(`${what}: '${s}' is not a real date`);
  }
  return ms;
}

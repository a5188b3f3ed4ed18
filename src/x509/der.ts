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

/** A non-negative INTEGER's magnitude without leading zeros; rejects negative and non-minimal forms. */
export function unsignedValue(node: DerNode, what: string): Uint8Array {
  const v = node.value;
  if (v.length === 0) throw new DerError(`${what}: empty INTEGER`);
  if (v[0]! & 0x80) throw new DerError(`${what}: negative INTEGER`);
  if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new DerError(`${what}: non-minimal INTEGER`);
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v;
}

/** Reads a BOOLEAN, which DER encodes as exactly one octet, 00 (FALSE) or ff (TRUE). */
export function booleanValue(node: DerNode | undefined, what: string): boolean {
  const v = expectTag(node, TAG.BOOLEAN, what).value;
  if (v.length !== 1 || (v[0] !== 0x00 && v[0] !== 0xff)) {
    throw new DerError(`${what}: a DER BOOLEAN is one octet, 00 or ff (found ${hexOf(v)})`);
  }
  return v[0] === 0xff;
}

/**
 * Dotted text of an OBJECT IDENTIFIER's contents, validated as DER requires: at least one
 * subidentifier, none starting with the padding octet 80, the last octet ending a
 * subidentifier. Arcs of any size are exact (BigInt beyond 2^53).
 */
export function oidText(value: Uint8Array, what = 'OBJECT IDENTIFIER'): string {
  if (value.length === 0) throw new DerError(`${what}: empty OBJECT IDENTIFIER`);
  if (value[value.length - 1]! & 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER ends inside a subidentifier`);
  // One array of arcs joined once: the result is a flat string (certificates may carry tens of
  // thousands of OIDs, each hashed when looked up).
  const arcs: Array<number | bigint> = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (value[i]! & 0x80) continue;
    if (value[start] === 0x80) throw new DerError(`${what}: OBJECT IDENTIFIER subidentifier padded with 80 (not minimal)`);
    const n = subidentifier(value, start, i + 1);
    if (start > 0) arcs.push(n);
    // The first subidentifier packs two arcs: 40 * X + Y, with X in 0..2 (Y < 40 unless X = 2).
    else if (typeof n === 'bigint') arcs.push(2, n - 80n);
    else if (n < 40) arcs.push(0, n);
    else if (n < 80) arcs.push(1, n - 40);
    else arcs.push(2, n - 80);
    start = i + 1;
  }
  return arcs.join('.');
}

/** One subidentifier (base 128, high bit = more follows): a number up to 7 octets (49 bits, exact), a BigInt beyond. */
function subidentifier(value: Uint8Array, from: number, to: number): number | bigint {
  if (to - from <= 7) {
    let n = 0;
    for (let i = from; i < to; i++) n = n * 128 + (value[i]! & 0x7f);
    return n;
  }
  let n = 0n;
  for (let i = from; i < to; i++) n = (n << 7n) | BigInt(value[i]! & 0x7f);
  return n;
}

/** Reads an OBJECT IDENTIFIER node as dotted text. */
export function oidValue(node: DerNode | undefined, what: string): string {
  return oidText(expectTag(node, TAG.OID, what).value, what);
}

/** A BIT STRING's bytes and unused-bit count, with the unused bits checked to be zero. */
export function bitStringValue(node: DerNode | undefined, what: string, tag: number = TAG.BIT_STRING): { bytes: Uint8Array; unusedBits: number } {
  const v = expectTag(node, tag, what).value;
  if (v.length === 0) throw new DerError(`${what}: BIT STRING without its unused-bits octet`);
  const unusedBits = v[0]!;
  if (unusedBits > 7) throw new DerError(`${what}: BIT STRING with ${unusedBits} unused bits (at most 7)`);
  if (v.length === 1 && unusedBits !== 0) throw new DerError(`${what}: empty BIT STRING with ${unusedBits} unused bits`);
  if (unusedBits !== 0 && (v[v.length - 1]! & ((1 << unusedBits) - 1)) !== 0) {
    throw new DerError(`${what}: BIT STRING unused bits are not zero`);
  }
  return { bytes: v.subarray(1), unusedBits };
}

/** The contents of a BIT STRING with no unused bits. */
export function bitStringBytes(node: DerNode | undefined, what: string): Uint8Array {
  const { bytes, unusedBits } = bitStringValue(node, what);
  if (unusedBits !== 0) throw new DerError(`${what}: expected a BIT STRING with no unused bits`);
  return bytes;
}

/**
 * The bits of a named-bit BIT STRING (keyUsage, ReasonFlags): DER requires trailing zero bits
 * to be removed, so the last bit present is set, and the unused bits are zero.
 */
export function namedBits(node: DerNode | undefined, what: string, tag: number = TAG.BIT_STRING): Set<number> {
  const { bytes, unusedBits } = bitStringValue(node, what, tag);
  const out = new Set<number>();
  if (bytes.length === 0) return out;
  const last = bytes[bytes.length - 1]!;
  if (last === 0 || ((last >> unusedBits) & 1) === 0) throw new DerError(`${what}: named-bit BIT STRING with trailing zero bits (DER removes them)`);
  for (let i = 0; i < bytes.length * 8 - unusedBits; i++) {
    if (bytes[i >> 3]! & (0x80 >> (i & 7))) out.add(i);
  }
  return out;
}

/** The elements of a constructed node, read in order with their tags and count checked. */
export class DerFields {
  private readonly items: DerNode[];
  private i = 0;
  constructor(
    node: DerNode,
    private readonly what: string,
  ) {
    this.items = derChildren(node);
  }
  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.items[this.i]?.tag;
  }
  /** The next element, which must carry `tag`. */
  next(tag: number, what: string): DerNode {
    const node = this.items[this.i];
    if (node === undefined) throw new DerError(`${this.what}: ${what} missing`);
    expectTag(node, tag, `${this.what} ${what}`);
    this.i++;
    return node;
  }
  /** The next element if it carries `tag`, otherwise undefined (nothing consumed). */
  optional(tag: number): DerNode | undefined {
    const node = this.items[this.i];
    if (node === undefined || node.tag !== tag) return undefined;
    this.i++;
    return node;
  }
  /** The next element, whatever its tag. */
  any(what: string): DerNode {
    const node = this.items[this.i];
    if (node === undefined) throw new DerError(`${this.what}: ${what} missing`);
    this.i++;
    return node;
  }
  /** Checks that every element was read. */
  end(): void {
    const left = this.items.length - this.i;
    if (left > 0) throw new DerError(`${this.what}: ${left} unexpected element(s) after the last field (tag 0x${this.items[this.i]!.tag.toString(16)})`);
  }
}

/** X.690 11.6: the elements of a DER SET OF in ascending order of their encodings. */
export function checkSetOrder(items: readonly DerNode[], what: string): void {
  for (let k = 1; k < items.length; k++) {
    if (compareEncodings(items[k - 1]!.raw, items[k]!.raw) > 0) throw new DerError(`${what}: SET OF elements not in DER (ascending) order`);
  }
}

/** Octet-string comparison with the shorter padded by trailing zeros (X.690 11.6). */
function compareEncodings(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  const longer = a.length > b.length ? a : b;
  for (let i = n; i < longer.length; i++) if (longer[i] !== 0) return a.length > b.length ? 1 : -1;
  return 0;
}

/** A short hex rendering of bytes for messages. */
export function hexOf(v: Uint8Array): string {
  let s = '';
  for (let i = 0; i < v.length && i < 16; i++) s += v[i]!.toString(16).padStart(2, '0');
  return v.length > 16 ? `${s}...` : s || '(empty)';
}

/** A non-negative INTEGER no larger than `max`, as a number. */
export function smallUnsigned(node: DerNode | undefined, what: string, max: number): number {
  const m = unsignedValue(expectTag(node, TAG.INTEGER, what), what);
  if (m.length > 6) throw new DerError(`${what}: ${m.length}-octet INTEGER, at most ${max} expected`);
  const n = m.reduce((a, b) => a * 256 + b, 0);
  if (n > max) throw new DerError(`${what}: ${n}, at most ${max} expected`);
  return n;
}

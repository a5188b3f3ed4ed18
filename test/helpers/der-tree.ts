// A DER tree that tests can edit and write back with every length recomputed: the corpus
// generator of the x509 differential test builds its crafted certificates with it. Written
// independently of src/x509 (it never checks anything): it only has to take apart valid DER.

export interface Node {
  tag: number;
  /** Contents of a primitive node. */
  value?: Uint8Array;
  /** Elements of a constructed node. */
  kids?: Node[];
  /** When set, these exact bytes are written instead of the node (any encoding, valid or not). */
  raw?: Uint8Array;
}

function header(bytes: Uint8Array, p: number): { tag: number; len: number; start: number } {
  const tag = bytes[p]!;
  let len = bytes[p + 1]!;
  let start = p + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i]!;
    start += n;
  }
  return { tag, len, start };
}

/** Parses valid DER into a tree (constructed tags recursively). */
export function parseTree(bytes: Uint8Array): Node {
  const { node } = parseAt(bytes, 0);
  return node;
}

function parseAt(bytes: Uint8Array, p: number): { node: Node; end: number } {
  const { tag, len, start } = header(bytes, p);
  const end = start + len;
  if (tag & 0x20) {
    const kids: Node[] = [];
    let q = start;
    while (q < end) {
      const r = parseAt(bytes, q);
      kids.push(r.node);
      q = r.end;
    }
    return { node: { tag, kids }, end };
  }
  return { node: { tag, value: bytes.slice(start, end) }, end };
}

export function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

/** Writes a tree back to DER (or to whatever `raw` overrides say). */
export function encodeTree(n: Node): Uint8Array {
  if (n.raw) return n.raw;
  const content = n.kids ? concat(n.kids.map(encodeTree)) : (n.value ?? new Uint8Array(0));
  return concat([new Uint8Array([n.tag, ...lengthOctets(content.length)]), content]);
}

export const prim = (tag: number, value: Uint8Array | number[]): Node => ({ tag, value: new Uint8Array(value) });
export const cons = (tag: number, ...kids: Node[]): Node => ({ tag, kids });
export const rawNode = (hex: string): Node => ({ tag: 0, raw: Uint8Array.from(Buffer.from(hex, 'hex')) });
export const clone = (n: Node): Node => structuredClone(n);

/** OID contents from dotted text (BigInt arcs). */
export function oidBytes(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(BigInt);
  const all = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const out: number[] = [];
  for (const a of all) {
    const chunk = [Number(a & 0x7fn)];
    for (let v = a >> 7n; v > 0n; v >>= 7n) chunk.unshift(0x80 | Number(v & 0x7fn));
    out.push(...chunk);
  }
  return new Uint8Array(out);
}

export const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

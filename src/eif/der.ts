/**
 * A minimal strict DER reader: enough to take apart X.509 certificates and EC private keys.
 * Every length is checked against the enclosing element before use.
 * @module
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

export interface DerElement {
  /** The whole identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  /** Contents (a view into the input). */
  readonly value: Uint8Array;
  /** The whole element, header included (a view into the input). */
  readonly raw: Uint8Array;
}

export const DER = {
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

/** Reads the element at `pos` of `buf`. */
export function readElement(buf: Uint8Array, pos: number): { el: DerElement; next: number } {
  if (pos + 2 > buf.length) throw new DerError(`truncated DER element at ${pos}`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte DER tag at ${pos}`);
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError(`bad DER length at ${pos}`);
    if (p + n > buf.length) throw new DerError(`truncated DER length at ${pos}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    if (len < 0x80 || buf[p] === 0) throw new DerError(`non-minimal DER length at ${pos}`);
    p += n;
  }
  if (p + len > buf.length) throw new DerError(`DER element at ${pos} runs past its container`);
  return { el: { tag, value: buf.subarray(p, p + len), raw: buf.subarray(pos, p + len) }, next: p + len };
}

/** Decodes exactly one element filling `buf`. */
export function decodeDer(buf: Uint8Array): DerElement {
  const { el, next } = readElement(buf, 0);
  if (next !== buf.length) throw new DerError(`${buf.length - next} bytes after the DER element`);
  return el;
}

/** The children of a constructed element. */
export function children(el: DerElement): DerElement[] {
  if ((el.tag & 0x20) === 0) throw new DerError(`DER element with tag 0x${el.tag.toString(16)} is not constructed`);
  const out: DerElement[] = [];
  let p = 0;
  while (p < el.value.length) {
    const r = readElement(el.value, p);
    out.push(r.el);
    p = r.next;
  }
  return out;
}

export function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (!el || el.tag !== tag) throw new DerError(`${what}: expected DER tag 0x${tag.toString(16)}, got ${el ? '0x' + el.tag.toString(16) : 'nothing'}`);
  return el;
}

/** Dotted-decimal text of an OBJECT IDENTIFIER's contents. */
export function oidText(value: Uint8Array): string {
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    n = n * 128 + (value[i]! & 0x7f);
    if ((value[i]! & 0x80) === 0) {
      if (parts.length === 0) {
        const first = n < 80 ? Math.floor(n / 40) : 2;
        parts.push(first, n - first * 40);
      } else parts.push(n);
      n = 0;
    }
  }
  return parts.join('.');
}

/** The contents of a BIT STRING with no unused bits. */
export function bitStringBytes(el: DerElement): Uint8Array {
  if (el.value.length === 0 || el.value[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return el.value.subarray(1);
}

/**
 * A byte-exact DER (X.690) writer for the few ASN.1 types the test CA's certificates and keys
 * use. Values are built bottom-up (`der(tag, ...children)`), so every length is known when its
 * header is written.
 * @module
 */
import { TAG } from './der.js';

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One element: tag, definite length, then the concatenated contents (written into one allocation). */
export function der(tag: number, ...contents: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of contents) size += c.length;
  const length = lengthBytes(size);
  const out = new Uint8Array(1 + length.length + size);
  out[0] = tag;
  out.set(length, 1);
  let o = 1 + length.length;
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

/** Encoded OIDs by dotted text: a certificate names the same dozen many times (never mutated: der() copies). */
const oids = new Map<string, Uint8Array>();

/** OBJECT IDENTIFIER from dotted text. */
export function derOid(dotted: string): Uint8Array {
  let out = oids.get(dotted);
  if (!out) {
    out = encodeOid(dotted);
    if (oids.size < 256) oids.set(dotted, out);
  }
  return out;
}

function encodeOid(dotted: string): Uint8Array {
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

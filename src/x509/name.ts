/**
 * X.509 distinguished names (RFC 5280 4.1.2.4) read strictly: a `Name` is a SEQUENCE of
 * non-empty RDN SETs in DER order, each attribute exactly a type OID and one value; string
 * values are decoded by their tag with their character sets checked. Also the
 * `C=US, O=Amazon, ...` text form used in messages.
 * @module
 */
import { DerError, type DerNode, DerFields, TAG, checkSetOrder, derChildren, expectTag, oidValue } from './der.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { NAME_OIDS } from './oids.js';

/** One attribute of a name, in encoding order. */
export interface NameAttribute {
  readonly oid: string;
  /** The decoded string, or `#` and the hex of the whole value for a value that is not a string type. */
  readonly value: string;
  /** Index of the RelativeDistinguishedName it belongs to (attributes of one RDN share it). */
  readonly rdn: number;
}

const SHORT_NAMES = new Map(Object.entries(NAME_OIDS).map(([k, v]) => [v, k]));
const KNOWN_TYPES = new Set(Object.values(NAME_OIDS));
const utf8 = new TextDecoder('utf-8', { fatal: true });

const NUMERIC_STRING = 0x12;
const VISIBLE_STRING = 0x1a;
const STRING_TAGS = new Set<number>([
  TAG.UTF8_STRING,
  NUMERIC_STRING,
  TAG.PRINTABLE_STRING,
  TAG.T61_STRING,
  TAG.IA5_STRING,
  VISIBLE_STRING,
  TAG.UNIVERSAL_STRING,
  TAG.BMP_STRING,
]);
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Text of single-byte characters, built in slices so that long values cannot overflow the stack. */
function byteText(v: Uint8Array): string {
  let s = '';
  for (let i = 0; i < v.length; i += 4096) s += String.fromCharCode(...v.subarray(i, i + 4096));
  return s;
}

/** A string value's text, decoded as its tag says; characters outside the type's set are refused. */
export function stringValue(node: DerNode, what: string): string {
  const v = node.value;
  switch (node.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(v);
      } catch {
        throw new DerError(`${what}: UTF8String is not valid UTF-8`);
      }
    case TAG.BMP_STRING: {
      if (v.length % 2) throw new DerError(`${what}: BMPString of odd length`);
      let s = '';
      for (let i = 0; i < v.length; i += 2) {
        const c = (v[i]! << 8) | v[i + 1]!;
        if (c >= 0xd800 && c <= 0xdfff) throw new DerError(`${what}: BMPString holds a surrogate (U+${c.toString(16)})`);
        s += String.fromCharCode(c);
      }
      return s;
    }
    case TAG.UNIVERSAL_STRING: {
      if (v.length % 4) throw new DerError(`${what}: UniversalString length not a multiple of 4`);
      let s = '';
      const view = new DataView(v.buffer, v.byteOffset, v.length);
      for (let i = 0; i < v.length; i += 4) {
        const c = view.getUint32(i);
        if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) throw new DerError(`${what}: UniversalString holds 0x${c.toString(16)}, not a Unicode scalar value`);
        s += String.fromCodePoint(c);
      }
      return s;
    }
    case TAG.PRINTABLE_STRING: {
      const s = byteText(v);
      if (!PRINTABLE.test(s)) throw new DerError(`${what}: PrintableString holds a character outside its set`);
      return s;
    }
    case TAG.IA5_STRING:
    case VISIBLE_STRING:
    case NUMERIC_STRING: {
      const [low, high] = node.tag === TAG.IA5_STRING ? [0x00, 0x7f] : [0x20, 0x7e];
      for (const b of v) {
        if (b > high || b < low || (node.tag === NUMERIC_STRING && b !== 0x20 && (b < 0x30 || b > 0x39))) {
          throw new DerError(`${what}: string of tag 0x${node.tag.toString(16)} holds byte 0x${b.toString(16)} outside its set`);
        }
      }
      return byteText(v);
    }
    case TAG.T61_STRING:
      return byteText(v); // Teletex: read byte for byte, as most readers do
    default:
      throw new DerError(`${what}: tag 0x${node.tag.toString(16)} is not a string type`);
  }
}

/** True for a universal string tag with the constructed bit set, which DER forbids. */
function constructedString(tag: number): boolean {
  return (tag & 0xe0) === 0x20 && STRING_TAGS.has(tag & 0x1f);
}

/** One AttributeTypeAndValue: exactly a type OID and one value. */
function attribute(atv: DerNode, rdn: number): NameAttribute {
  const f = new DerFields(expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'), 'AttributeTypeAndValue');
  const oid = oidValue(f.next(TAG.OID, 'type'), 'attribute type');
  const value = f.any('value');
  f.end();
  const what = `attribute ${SHORT_NAMES.get(oid) ?? oid}`;
  if (constructedString(value.tag)) throw new DerError(`${what}: constructed string (DER uses the primitive form)`);
  if (STRING_TAGS.has(value.tag)) return { oid, value: stringValue(value, what), rdn };
  if (KNOWN_TYPES.has(oid)) throw new DerError(`${what}: tag 0x${value.tag.toString(16)} is not a directory string`);
  return { oid, value: `#${bytesToHex(value.raw)}`, rdn };
}

/** The attributes of a `Name`, in encoding order (RDNs non-empty, multi-valued RDNs in DER order). */
export function nameAttributes(name: DerNode, what = 'Name'): NameAttribute[] {
  const out: NameAttribute[] = [];
  derChildren(expectTag(name, TAG.SEQUENCE, what)).forEach((rdn, i) => {
    for (const a of rdnAttributes(rdn, `${what} RelativeDistinguishedName`, TAG.SET, i)) out.push(a);
  });
  return out;
}

/** The attributes of one RelativeDistinguishedName (a non-empty SET OF in DER order). */
export function rdnAttributes(rdn: DerNode, what: string, tag: number = TAG.SET, index = 0): NameAttribute[] {
  const items = derChildren(expectTag(rdn, tag, what));
  if (items.length === 0) throw new DerError(`${what}: empty (at least one attribute)`);
  checkSetOrder(items, what);
  return items.map((atv) => attribute(atv, index));
}

/** RFC 4514-like text of a name, in encoding order (`C=US, O=Amazon, ...`). */
export function nameText(attributes: readonly NameAttribute[]): string {
  return attributes.map((a) => `${SHORT_NAMES.get(a.oid) ?? a.oid}=${a.value}`).join(', ');
}

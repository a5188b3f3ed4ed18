/**
 * X.509 distinguished names: the attribute list of a `Name` with each value decoded by its
 * string type, and the `C=US, O=Amazon, ...` text form used in messages.
 * @module
 */
import { DerError, type DerNode, TAG, derChildren, expectTag, oidText } from './der.js';
import { NAME_OIDS } from './oids.js';

/** One attribute of a name, in encoding order. */
export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
}

const SHORT_NAMES = new Map(Object.entries(NAME_OIDS).map(([k, v]) => [v, k]));
const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = (b: Uint8Array) => String.fromCharCode(...b);

/** A directory string's text, decoded as its tag says (UTF-8, BMP and Universal; the rest byte for byte). */
function stringValue(node: DerNode | undefined): string {
  if (node === undefined) return '';
  const v = node.value;
  switch (node.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(v);
      } catch {
        throw new DerError('attribute value is not valid UTF-8');
      }
    case TAG.BMP_STRING: {
      let s = '';
      for (let i = 0; i + 1 < v.length; i += 2) s += String.fromCharCode((v[i]! << 8) | v[i + 1]!);
      return s;
    }
    case TAG.UNIVERSAL_STRING: {
      let s = '';
      const view = new DataView(v.buffer, v.byteOffset, v.length);
      for (let i = 0; i + 3 < v.length; i += 4) s += String.fromCodePoint(view.getUint32(i));
      return s;
    }
    default:
      return latin1(v);
  }
}

/** The attributes of a `Name`, in encoding order. */
export function nameAttributes(name: DerNode): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of derChildren(expectTag(name, TAG.SEQUENCE, 'Name'))) {
    for (const atv of derChildren(expectTag(rdn, TAG.SET, 'RelativeDistinguishedName'))) {
      const [type, value] = derChildren(expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue'));
      out.push({ oid: oidText(expectTag(type, TAG.OID, 'attribute type').value), value: stringValue(value) });
    }
  }
  return out;
}

/** RFC 4514-like text of a name, in encoding order (`C=US, O=Amazon, ...`). */
export function nameText(attributes: readonly NameAttribute[]): string {
  return attributes.map((a) => `${SHORT_NAMES.get(a.oid) ?? a.oid}=${a.value}`).join(', ');
}

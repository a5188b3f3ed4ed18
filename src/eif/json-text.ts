/**
 * JSON text the way nitro-cli's serde_json prints it: two-space pretty printing, struct fields
 * in declaration order, and the keys of free-form JSON values (DockerInfo, CustomMetadata)
 * sorted by code point, as serde_json's default map does.
 * @module
 */

/** A JSON value whose objects keep the key order given (a Map), or are sorted (plain objects). */
export type JsonValue = null | boolean | number | string | JsonValue[] | Map<string, JsonValue> | { readonly [k: string]: JsonValue };

/** Code-point order (= UTF-8 byte order), the order of Rust's BTreeMap<String, _>. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

function str(s: string): string {
  // JSON.stringify escapes exactly as serde_json does: ", \, \b \f \n \r \t, other controls as \u00xx.
  return JSON.stringify(s);
}

function write(v: JsonValue, indent: string, out: string[]): void {
  if (v === null || typeof v === 'boolean') out.push(String(v));
  else if (typeof v === 'number') out.push(Number.isFinite(v) ? String(v) : 'null');
  else if (typeof v === 'string') out.push(str(v));
  else if (Array.isArray(v)) {
    if (v.length === 0) return void out.push('[]');
    const inner = indent + '  ';
    out.push('[\n');
    v.forEach((x, i) => {
      out.push(inner);
      write(x, inner, out);
      out.push(i + 1 < v.length ? ',\n' : '\n');
    });
    out.push(indent + ']');
  } else {
    const entries: Array<[string, JsonValue]> = v instanceof Map ? [...v] : Object.keys(v).sort(compareCodePoints).map((k) => [k, (v as Record<string, JsonValue>)[k]!]);
    if (entries.length === 0) return void out.push('{}');
    const inner = indent + '  ';
    out.push('{\n');
    entries.forEach(([k, x], i) => {
      out.push(inner, str(k), ': ');
      write(x, inner, out);
      out.push(i + 1 < entries.length ? ',\n' : '\n');
    });
    out.push(indent + '}');
  }
}

/** serde_json `to_string_pretty`. */
export function toPrettyJson(v: JsonValue): string {
  const out: string[] = [];
  write(v, '', out);
  return out.join('');
}

function writeCompact(v: JsonValue, out: string[]): void {
  if (v === null || typeof v !== 'object') {
    out.push(typeof v === 'string' ? str(v) : typeof v === 'number' && !Number.isFinite(v) ? 'null' : String(v));
  } else if (Array.isArray(v)) {
    out.push('[');
    v.forEach((x, i) => {
      if (i) out.push(',');
      writeCompact(x, out);
    });
    out.push(']');
  } else {
    const entries: Array<[string, JsonValue]> = v instanceof Map ? [...v] : Object.keys(v).sort(compareCodePoints).map((k) => [k, (v as Record<string, JsonValue>)[k]!]);
    out.push('{');
    entries.forEach(([k, x], i) => {
      if (i) out.push(',');
      out.push(str(k), ':');
      writeCompact(x, out);
    });
    out.push('}');
  }
}

/** serde_json `to_vec` (compact). */
export function toCompactJson(v: JsonValue): string {
  const out: string[] = [];
  writeCompact(v, out);
  return out.join('');
}

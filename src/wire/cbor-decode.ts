/**
 * Strict CBOR reader (RFC 8949) for untrusted input.
 *
 * Produces a small typed tree that keeps what a byte-faithful peer must see: byte strings stay
 * distinct from text, null from absence, definite from indefinite containers, and integers past
 * 2^53 become bigints instead of losing precision. Every length is checked against the bytes
 * that remain before anything is allocated, nesting is bounded, text must be valid UTF-8, and
 * every failure is a {@link CborDecodeError} carrying the offset where it happened.
 * @module
 */

export type CborValue =
  | { readonly type: 'uint'; readonly value: number | bigint }
  | { readonly type: 'nint'; readonly value: number | bigint }
  | { readonly type: 'bytes'; readonly value: Uint8Array }
  | { readonly type: 'text'; readonly value: string }
  | { readonly type: 'array'; readonly items: CborValue[]; readonly indefinite: boolean }
  | { readonly type: 'map'; readonly entries: Array<[CborValue, CborValue]>; readonly indefinite: boolean }
  | { readonly type: 'tag'; readonly tag: number | bigint; readonly value: CborValue }
  /** Simple values: 20 false, 21 true, 22 null, 23 undefined, others as themselves. */
  | { readonly type: 'simple'; readonly value: number }
  | { readonly type: 'float'; readonly value: number };

export type CborMap = Extract<CborValue, { type: 'map' }>;

export class CborDecodeError extends Error {
  override readonly name = 'CborDecodeError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

export interface CborDecodeOptions {
  /** Deepest nesting of arrays, maps and tags accepted (default 32). */
  readonly maxDepth?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const BREAK = Symbol('break');

class Reader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly maxDepth: number,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(message: string, at = this.pos): never {
    throw new CborDecodeError(message, at);
  }

  need(n: number, what: string): void {
    if (n > this.bytes.length - this.pos) this.fail(`truncated ${what}: ${n} bytes needed, ${this.bytes.length - this.pos} left`);
  }

  /** Reads the argument of a head whose low five bits are `info`; -1 means indefinite. */
  argument(info: number, at: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1, 'argument');
        return this.bytes[this.pos++]!;
      case 25: {
        this.need(2, 'argument');
        const v = this.view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4, 'argument');
        const v = this.view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8, 'argument');
        const v = this.view.getBigUint64(this.pos);
        this.pos += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 31:
        return -1;
      default:
        return this.fail(`reserved additional information ${info}`, at);
    }
  }

  /** A length for a string or container, bounded by what is left in the input. */
  length(arg: number | bigint, perItem: number, what: string, at: number): number {
    const left = this.bytes.length - this.pos;
    if (typeof arg === 'bigint' || arg * perItem > left) {
      this.fail(`${what} of length ${arg} exceeds the ${left} bytes left`, at);
    }
    return arg;
  }

  item(depth: number): CborValue | typeof BREAK {
    const at = this.pos;
    this.need(1, 'item');
    const ib = this.bytes[this.pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (ib === 0xff) return BREAK;
    if (major === 7) return this.simple(info, at);
    const arg = this.argument(info, at);
    const indefinite = arg === -1;
    if (indefinite && major <= 1) this.fail('indefinite length on an integer', at);
    if (indefinite && major === 6) this.fail('indefinite length on a tag', at);
    switch (major) {
      case 0:
        return { type: 'uint', value: arg };
      case 1:
        return {
          type: 'nint',
          value: typeof arg === 'bigint' || arg >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(arg) : -1 - arg,
        };
      case 2:
      case 3: {
        if (major === 3 && !indefinite) {
          const n = this.length(arg, 1, 'string', at);
          const ascii = n <= 64 ? this.ascii(n) : null;
          if (ascii !== null) return { type: 'text', value: ascii };
        }
        const raw = indefinite ? this.chunks(major) : this.take(this.length(arg, 1, 'string', at));
        if (major === 2) return { type: 'bytes', value: raw };
        try {
          return { type: 'text', value: utf8.decode(raw) };
        } catch {
          return this.fail('text string is not valid UTF-8', at);
        }
      }
      case 4: {
        if (depth >= this.maxDepth) this.fail('nesting too deep', at);
        const items: CborValue[] = [];
        if (indefinite) {
          for (;;) {
            const v = this.item(depth + 1);
            if (v === BREAK) break;
            items.push(v);
          }
        } else {
          const n = this.length(arg, 1, 'array', at);
          for (let i = 0; i < n; i++) items.push(this.value(depth + 1));
        }
        return { type: 'array', items, indefinite };
      }
      case 5: {
        if (depth >= this.maxDepth) this.fail('nesting too deep', at);
        const entries: Array<[CborValue, CborValue]> = [];
        if (indefinite) {
          for (;;) {
            const k = this.item(depth + 1);
            if (k === BREAK) break;
            entries.push([k, this.value(depth + 1)]);
          }
        } else {
          const n = this.length(arg, 2, 'map', at);
          for (let i = 0; i < n; i++) entries.push([this.value(depth + 1), this.value(depth + 1)]);
        }
        return { type: 'map', entries, indefinite };
      }
      default: {
        if (depth >= this.maxDepth) this.fail('nesting too deep', at);
        return { type: 'tag', tag: arg, value: this.value(depth + 1) };
      }
    }
  }

  value(depth: number): CborValue {
    const at = this.pos;
    const v = this.item(depth);
    if (v === BREAK) this.fail('unexpected break', at);
    return v;
  }

  /** Reads `n` bytes as text when all are ASCII (every key on the NSM wire); otherwise null. */
  ascii(n: number): string | null {
    const b = this.bytes;
    let s = '';
    for (let i = this.pos; i < this.pos + n; i++) {
      const c = b[i]!;
      if (c > 0x7f) return null;
      s += String.fromCharCode(c);
    }
    this.pos += n;
    return s;
  }

  take(n: number): Uint8Array {
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Concatenates the definite chunks of an indefinite-length string. */
  chunks(major: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const cat = this.pos;
      this.need(1, 'string chunk');
      const ib = this.bytes[this.pos++]!;
      if (ib === 0xff) break;
      if (ib >> 5 !== major) this.fail('chunk of an indefinite string has the wrong type', cat);
      const arg = this.argument(ib & 0x1f, cat);
      if (arg === -1) this.fail('nested indefinite string chunk', cat);
      const part = this.take(this.length(arg, 1, 'string chunk', cat));
      parts.push(part);
      total += part.length;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  simple(info: number, at: number): CborValue {
    if (info < 24) return { type: 'simple', value: info };
    switch (info) {
      case 24: {
        this.need(1, 'simple value');
        const v = this.bytes[this.pos++]!;
        if (v < 32) this.fail('simple value in two bytes below 32', at);
        return { type: 'simple', value: v };
      }
      case 25: {
        this.need(2, 'half float');
        const v = halfToNumber(this.view.getUint16(this.pos));
        this.pos += 2;
        return { type: 'float', value: v };
      }
      case 26: {
        this.need(4, 'float');
        const v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return { type: 'float', value: v };
      }
      case 27: {
        this.need(8, 'double');
        const v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return { type: 'float', value: v };
      }
      default:
        return this.fail(`reserved additional information ${info} in major type 7`, at);
    }
  }
}

function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Decodes one CBOR item starting at `offset` and returns it with the offset just past it.
 * Bytes after the item are left alone (see {@link decodeCbor} for whole-buffer decoding).
 */
export function decodeCborItem(
  bytes: Uint8Array,
  offset = 0,
  options: CborDecodeOptions = {},
): { value: CborValue; end: number } {
  const r = new Reader(bytes, offset, options.maxDepth ?? 32);
  const value = r.value(0);
  return { value, end: r.pos };
}

/** Decodes a buffer that must hold exactly one CBOR item, with no trailing bytes. */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborValue {
  const { value, end } = decodeCborItem(bytes, 0, options);
  if (end !== bytes.length) throw new CborDecodeError(`${bytes.length - end} trailing bytes`, end);
  return value;
}

/** The value under text key `key` in a map, or undefined. Duplicate keys are the caller's concern. */
export function cborMapGet(map: CborMap, key: string): CborValue | undefined {
  for (const [k, v] of map.entries) if (k.type === 'text' && k.value === key) return v;
  return undefined;
}

export function isCborNull(v: CborValue): boolean {
  return v.type === 'simple' && v.value === 22;
}

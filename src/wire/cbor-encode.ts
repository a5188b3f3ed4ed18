/**
 * CBOR writer (RFC 8949) with full control over every header byte.
 *
 * Byte-exact output is the point: integers take their shortest form unless a fixed width is
 * asked for (the attestation timestamp is always `1b` + 8 bytes), containers are definite
 * unless an indefinite map is opened explicitly, and nothing is reordered. No hidden state
 * beyond the buffer being written.
 * @module
 */

const utf8 = new TextEncoder();

export class CborWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Major type + argument in its shortest form. */
  head(major: number, arg: number | bigint): this {
    const m = major << 5;
    if (typeof arg === 'bigint') {
      if (arg < 0n || arg > 0xffff_ffff_ffff_ffffn) throw new RangeError('CBOR argument out of range');
      if (arg <= 0xffff_ffffn) return this.head(major, Number(arg));
      this.ensure(9);
      this.buf[this.pos++] = m | 27;
      this.view.setBigUint64(this.pos, arg);
      this.pos += 8;
      return this;
    }
    if (!Number.isInteger(arg) || arg < 0 || arg > Number.MAX_SAFE_INTEGER) {
      throw new RangeError('CBOR argument out of range');
    }
    this.ensure(9);
    if (arg < 24) {
      this.buf[this.pos++] = m | arg;
    } else if (arg <= 0xff) {
      this.buf[this.pos++] = m | 24;
      this.buf[this.pos++] = arg;
    } else if (arg <= 0xffff) {
      this.buf[this.pos++] = m | 25;
      this.view.setUint16(this.pos, arg);
      this.pos += 2;
    } else if (arg <= 0xffff_ffff) {
      this.buf[this.pos++] = m | 26;
      this.view.setUint32(this.pos, arg);
      this.pos += 4;
    } else {
      this.buf[this.pos++] = m | 27;
      this.view.setBigUint64(this.pos, BigInt(arg));
      this.pos += 8;
    }
    return this;
  }

  /** Unsigned integer (major type 0), shortest form. */
  uint(n: number | bigint): this {
    return this.head(0, n);
  }

  /** Unsigned integer always written as `1b` + 8 bytes, whatever its value. */
  uint64(n: number | bigint): this {
    const v = BigInt(n);
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError('CBOR uint64 out of range');
    this.ensure(9);
    this.buf[this.pos++] = 0x1b;
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** Signed integer: major type 0 or 1, shortest form. */
  int(n: number | bigint): this {
    if (typeof n === 'bigint') return n < 0n ? this.head(1, -1n - n) : this.head(0, n);
    return n < 0 ? this.head(1, -1 - n) : this.head(0, n);
  }

  /** Byte string (major type 2). */
  bytes(b: Uint8Array): this {
    this.head(2, b.length);
    return this.raw(b);
  }

  /** Text string (major type 3), UTF-8. */
  text(s: string): this {
    // Fast path for ASCII up to 255 characters (every key and value on this wire, module_id
    // included): one or two header bytes, then one byte per character, no TextEncoder.
    const n = s.length;
    if (n <= 0xff) {
      this.ensure(2 + n);
      const start = this.pos;
      const buf = this.buf;
      let p = start + (n < 24 ? 1 : 2);
      let ascii = true;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) {
          ascii = false;
          break;
        }
        buf[p++] = c;
      }
      if (ascii) {
        if (n < 24) buf[start] = 0x60 | n;
        else {
          buf[start] = 0x78;
          buf[start + 1] = n;
        }
        this.pos = p;
        return this;
      }
    }
    const b = utf8.encode(s);
    this.head(3, b.length);
    return this.raw(b);
  }

  /** Header of a definite-length array of `n` items (major type 4); the items follow. */
  arrayHeader(n: number): this {
    return this.head(4, n);
  }

  /** Header of a definite-length map of `n` pairs (major type 5); keys and values follow. */
  mapHeader(n: number): this {
    return this.head(5, n);
  }

  /** Opens an indefinite-length map (`bf`); close it with {@link end}. */
  mapIndefinite(): this {
    return this.byte(0xbf);
  }

  /** The `ff` break that closes an indefinite-length container. */
  end(): this {
    return this.byte(0xff);
  }

  /** Tag `t` (major type 6); the tagged item follows. */
  tag(t: number): this {
    return this.head(6, t);
  }

  /** `true` (f5) or `false` (f4). */
  bool(b: boolean): this {
    return this.byte(b ? 0xf5 : 0xf4);
  }

  /** `null` (f6). */
  null(): this {
    return this.byte(0xf6);
  }

  /** Byte string, or null when the value is absent. */
  bytesOrNull(b: Uint8Array | null | undefined): this {
    return b == null ? this.null() : this.bytes(b);
  }

  /** One raw byte, verbatim. */
  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  /** Appends bytes that are already CBOR (or part of an item) verbatim. */
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** A copy of what was written, sized exactly. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Encodes one CBOR text string on its own (handy for precomputed constants). */
export function cborText(s: string): Uint8Array {
  return new CborWriter(s.length + 9).text(s).finish();
}

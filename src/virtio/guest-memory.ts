/**
 * Guest physical memory as the device sees it: one byte array (guest address 0 = index 0) or a
 * list of regions at given guest addresses, like a VMM's memory map.
 *
 * Every access is bounds-checked: a range is valid only when regions cover all of it without a
 * gap (a buffer may straddle two adjacent regions). Guest addresses must stay below 2^53 so they
 * can be plain numbers on the hot path; the descriptor's 64-bit address above that is simply
 * "outside guest memory". Little-endian throughout (virtio 1.x rings).
 * @module
 */

export interface GuestMemoryRegion {
  /** Guest physical address of `bytes[0]`. */
  readonly guestAddress: bigint;
  readonly bytes: Uint8Array;
}

/** One array starting at guest address 0, or regions. */
export type GuestMemoryInput = Uint8Array | readonly GuestMemoryRegion[];

/** Told of every range the device wrote, in write order (dirty tracking). */
export type GuestWriteObserver = (guestAddress: number, length: number) => void;

interface Region {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

function region(start: number, bytes: Uint8Array): Region {
  return { start, end: start + bytes.length, bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export class GuestMemory {
  private readonly regions: readonly Region[];
  /** The region the last access hit (most accesses land in the same one). */
  private last: Region;

  /**
   * Throws TypeError / RangeError for a malformed map (a VMM mistake, not a guest one).
   * `onWrite`, when given, is called after each successful write with its guest range.
   */
  constructor(
    input: GuestMemoryInput,
    private readonly onWrite: GuestWriteObserver | null = null,
  ) {
    const list: Region[] = [];
    if (input instanceof Uint8Array) {
      list.push(region(0, input));
    } else if (Array.isArray(input)) {
      for (const r of input as readonly GuestMemoryRegion[]) {
        if (typeof r?.guestAddress !== 'bigint' || !(r.bytes instanceof Uint8Array)) {
          throw new TypeError('a memory region is {guestAddress: bigint, bytes: Uint8Array}');
        }
        if (r.guestAddress < 0n || r.guestAddress + BigInt(r.bytes.length) > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new RangeError(`memory region at 0x${r.guestAddress.toString(16)} must lie below 2^53`);
        }
        if (r.bytes.length > 0) list.push(region(Number(r.guestAddress), r.bytes));
      }
    } else {
      throw new TypeError('guest memory must be a Uint8Array or an array of regions');
    }
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.start < list[i - 1]!.end) {
        throw new RangeError(`memory regions overlap at guest address 0x${list[i]!.start.toString(16)}`);
      }
    }
    if (list.length === 0) throw new RangeError('guest memory is empty');
    this.regions = list;
    this.last = list[0]!;
  }

  /** The region holding `addr`, or undefined. */
  private find(addr: number): Region | undefined {
    const l = this.last;
    if (addr >= l.start && addr < l.end) return l;
    let lo = 0;
    let hi = this.regions.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid]!;
      if (addr < r.start) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return (this.last = r);
    }
    return undefined;
  }

  /** True when every byte of [addr, addr + length) is backed by guest memory. */
  contains(addr: number, length: number): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(length) || length < 0) return false;
    const end = addr + length;
    if (!Number.isSafeInteger(end)) return false;
    let at = addr;
    while (at < end) {
      const r = this.find(at);
      if (!r) return false;
      at = r.end;
    }
    return length > 0 || this.find(addr) !== undefined;
  }

  /** Copies [addr, addr + length) out; undefined when not wholly inside guest memory. */
  read(addr: number, length: number): Uint8Array | undefined {
    const r = this.find(addr);
    if (r !== undefined && Number.isSafeInteger(length) && length >= 0 && addr + length <= r.end) {
      const from = addr - r.start;
      if (length > 64) return r.bytes.slice(from, from + length);
      const out = new Uint8Array(length); // small: on the JS heap, a loop beats set()
      for (let i = 0; i < length; i++) out[i] = r.bytes[from + i]!;
      return out;
    }
    if (!this.contains(addr, length)) return undefined;
    const out = new Uint8Array(length);
    this.copyOut(addr, out, 0, length);
    return out;
  }

  /**
   * A DataView and offset covering [addr, addr + length) when one region holds all of it, for
   * reading a structure (a descriptor) in one go; undefined otherwise (use the scalar accessors).
   */
  span(addr: number, length: number): { readonly view: DataView; readonly offset: number } | undefined {
    const r = this.find(addr);
    return r !== undefined && addr + length <= r.end ? { view: r.view, offset: addr - r.start } : undefined;
  }

  /** Copies `length` bytes at `addr` into `dst[offset..]`; the caller has checked the range. */
  copyOut(addr: number, dst: Uint8Array, offset: number, length: number): void {
    let done = 0;
    while (done < length) {
      const at = addr + done;
      const r = this.find(at)!;
      const n = Math.min(length - done, r.end - at);
      dst.set(r.bytes.subarray(at - r.start, at - r.start + n), offset + done);
      done += n;
    }
  }

  /** Writes `src` at `addr`; returns false (writing nothing) when not wholly inside guest memory. */
  write(addr: number, src: Uint8Array): boolean {
    const r = this.find(addr);
    if (r !== undefined && addr + src.length <= r.end) {
      r.bytes.set(src, addr - r.start);
      this.onWrite?.(addr, src.length);
      return true;
    }
    if (!this.contains(addr, src.length)) return false;
    let done = 0;
    while (done < src.length) {
      const at = addr + done;
      const r = this.find(at)!;
      const n = Math.min(src.length - done, r.end - at);
      r.bytes.set(src.subarray(done, done + n), at - r.start);
      done += n;
    }
    this.onWrite?.(addr, src.length);
    return true;
  }

  // ---- little-endian scalars: the caller has checked the range with contains() -----------------

  getU16(addr: number): number {
    const r = this.find(addr);
    if (r && addr + 2 <= r.end) return r.view.getUint16(addr - r.start, true);
    const b = this.read(addr, 2)!;
    return b[0]! | (b[1]! << 8);
  }

  setU16(addr: number, value: number): void {
    const r = this.find(addr);
    if (r && addr + 2 <= r.end) {
      r.view.setUint16(addr - r.start, value, true);
      this.onWrite?.(addr, 2);
    } else this.write(addr, new Uint8Array([value & 0xff, (value >> 8) & 0xff]));
  }

  getU32(addr: number): number {
    const r = this.find(addr);
    if (r && addr + 4 <= r.end) return r.view.getUint32(addr - r.start, true);
    const b = this.read(addr, 4)!;
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  setU32(addr: number, value: number): void {
    const r = this.find(addr);
    if (r && addr + 4 <= r.end) {
      r.view.setUint32(addr - r.start, value, true);
      this.onWrite?.(addr, 4);
    } else this.write(addr, new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]));
  }

  /** A 64-bit value as a number; values of 2^53 or more come back as Infinity (never in memory). */
  getU64(addr: number): number {
    const lo = this.getU32(addr);
    const hi = this.getU32(addr + 4);
    return hi >= 0x200000 ? Infinity : hi * 0x1_0000_0000 + lo;
  }
}

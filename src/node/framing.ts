/**
 * The stream framing spoken by `nsm-emulator serve`: every message, in both directions, is a
 * 4-byte big-endian length followed by that many bytes of raw CBOR (one NSM request or one
 * NSM response). {@link FrameReader} cuts a byte stream into frames without ever allocating
 * more than a frame the device could accept; {@link encodeFrame} builds one frame.
 * @module
 */
import { REQUEST_MAX_SIZE } from '../device/limits.js';

/** Bytes in the length prefix. */
export const FRAME_HEADER_SIZE = 4;

/** Largest request body the server reads into memory (the device's own request limit). */
export const FRAME_BODY_MAX = REQUEST_MAX_SIZE;

/**
 * Default cap on a declared request length. Lengths in (FRAME_BODY_MAX, cap] are read and
 * discarded (the sender gets `InputTooLarge`); a length above the cap means the peer does not
 * speak this framing, and the connection is closed.
 */
export const FRAME_LENGTH_CAP = 1 << 20;

/** One event out of {@link FrameReader.push}. */
export type FrameEvent =
  /** A complete frame whose body fits the device limit. */
  | { readonly kind: 'frame'; readonly body: Uint8Array }
  /** A frame longer than FRAME_BODY_MAX (its body was skipped, not stored). */
  | { readonly kind: 'oversized'; readonly length: number }
  /** A declared length above the cap: the stream cannot be trusted any more. */
  | { readonly kind: 'overCap'; readonly length: number };

/** Incremental frame parser for one connection. */
export class FrameReader {
  private readonly header = new Uint8Array(FRAME_HEADER_SIZE);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  /** Bytes of an oversized body still to skip. */
  private skip = 0;
  private skipLength = 0;
  private failed = false;

  constructor(private readonly cap: number = FRAME_LENGTH_CAP) {}

  /** True when the stream stopped between frames (nothing half-read). */
  get idle(): boolean {
    return this.headerFill === 0 && this.body === null && this.skip === 0;
  }

  /** Bytes of the current partial frame received so far, and its declared length (if known). */
  get partial(): { received: number; declared: number | null } {
    if (this.body !== null) return { received: FRAME_HEADER_SIZE + this.bodyFill, declared: this.body.length };
    if (this.skip > 0) return { received: FRAME_HEADER_SIZE + this.skipLength - this.skip, declared: this.skipLength };
    return { received: this.headerFill, declared: null };
  }

  /** Consumes a chunk; returns the events it completed, in order. After `overCap`, returns nothing. */
  push(chunk: Uint8Array): FrameEvent[] {
    this.feed(chunk);
    const events: FrameEvent[] = [];
    for (let ev = this.next(); ev !== null; ev = this.next()) events.push(ev);
    return events;
  }

  /** Bytes fed and not yet cut into frames: `pending[pendingAt..]`. */
  private pending: Uint8Array | null = null;
  private pendingAt = 0;

  /**
   * Queues a chunk for {@link next}, which cuts it one frame at a time: a caller that executes
   * frames as it goes holds the bytes, not one object per frame. The chunk is kept by reference
   * until consumed or {@link retain}ed.
   */
  feed(chunk: Uint8Array): void {
    if (this.buffered) {
      const rest = this.pending!.subarray(this.pendingAt);
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      chunk = joined;
    }
    this.pending = chunk.length > 0 ? chunk : null;
    this.pendingAt = 0;
  }

  /** True while fed bytes remain to be cut by {@link next}. */
  get buffered(): boolean {
    return this.pending !== null && !this.failed;
  }

  /** Copies the fed bytes not yet cut, so the caller may reuse the chunk's memory. */
  retain(): void {
    if (this.pending !== null) {
      // A copy: new Uint8Array(view) copies, where a Buffer's own slice() would only be a view.
      this.pending = new Uint8Array(this.pending.subarray(this.pendingAt));
      this.pendingAt = 0;
    }
  }

  /** Forgets the fed bytes not yet cut. */
  discard(): void {
    this.pending = null;
    this.pendingAt = 0;
  }

  /** The next event from the fed bytes, or null once they are used up (and after `overCap`). */
  next(): FrameEvent | null {
    const chunk = this.pending;
    if (chunk === null || this.failed) return null;
    let i = this.pendingAt;
    let ev: FrameEvent | null = null;
    while (ev === null && i < chunk.length && !this.failed) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) ev = { kind: 'oversized', length: this.skipLength };
        continue;
      }
      if (this.body !== null) {
        const n = Math.min(this.body.length - this.bodyFill, chunk.length - i);
        this.body.set(chunk.subarray(i, i + n), this.bodyFill);
        this.bodyFill += n;
        i += n;
        if (this.bodyFill === this.body.length) {
          ev = { kind: 'frame', body: this.body };
          this.body = null;
        }
        continue;
      }
      // Header: take whole headers straight from the chunk when possible.
      if (this.headerFill === 0 && chunk.length - i >= FRAME_HEADER_SIZE) {
        ev = this.startBody(readU32(chunk, i));
        i += FRAME_HEADER_SIZE;
        continue;
      }
      this.header[this.headerFill++] = chunk[i++]!;
      if (this.headerFill === FRAME_HEADER_SIZE) {
        this.headerFill = 0;
        ev = this.startBody(readU32(this.header, 0));
      }
    }
    if (i >= chunk.length || this.failed) this.discard();
    else this.pendingAt = i;
    return ev;
  }

  /** Starts a frame of `length` bytes; the event it completes at once (empty, over the cap), if any. */
  private startBody(length: number): FrameEvent | null {
    if (length > this.cap) {
      this.failed = true;
      return { kind: 'overCap', length };
    }
    if (length > FRAME_BODY_MAX) {
      this.skip = length;
      this.skipLength = length;
      return null;
    }
    if (length === 0) return { kind: 'frame', body: new Uint8Array(0) };
    this.body = new Uint8Array(length);
    this.bodyFill = 0;
    return null;
  }
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** One frame: the 4-byte big-endian length of `body`, then `body` (a Buffer: sockets take it as is). */
export function encodeFrame(body: Uint8Array): Uint8Array {
  if (body.length > 0xffffffff) throw new RangeError('frame body longer than 2^32 - 1 bytes');
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.length);
  const n = body.length;
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

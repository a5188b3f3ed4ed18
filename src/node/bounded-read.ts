/**
 * Reading files and streams with a size cap checked while reading (Node only): whatever the
 * input is (a regular file, /dev/zero, a pipe, standard input), at most `limit + 1` bytes are
 * ever held before the read stops with {@link InputTooLargeError}.
 * @module
 */
// node:fs's lazy `promises` (not node:fs/promises): importing this module loads nothing more.
import { closeSync, constants, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';

/** The input holds more than `limit` bytes; reading stopped there. */
export class InputTooLargeError extends Error {
  override readonly name = 'InputTooLargeError';
  constructor(readonly limit: number) {
    super(`more than ${formatSize(limit)}; stopped reading there`);
  }
}

/** 1536 -> "1.5 KiB", 65536 -> "64 KiB". */
export function formatSize(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    u++;
  }
  return `${v} ${units[u]}`;
}

const CHUNK = 64 * 1024;

function join(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The chunks of one bounded read: a buffer for the next read, never more than one byte past the limit. */
class BoundedChunks {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;
  constructor(private readonly limit: number) {}
  /** A buffer for the next read (at most one byte more than the limit allows, to notice going over). */
  next(): Uint8Array {
    return new Uint8Array(Math.min(CHUNK, this.limit + 1 - this.total));
  }
  /** Takes `n` bytes read into `buf`; false at the end of the input; InputTooLargeError past the limit. */
  took(buf: Uint8Array, n: number): boolean {
    if (n === 0) return false;
    this.chunks.push(buf.subarray(0, n));
    this.total += n;
    if (this.total > this.limit) throw new InputTooLargeError(this.limit);
    return true;
  }
  bytes(): Uint8Array {
    return join(this.chunks, this.total);
  }
}

/** A file's bytes, or {@link InputTooLargeError} once more than `limit` bytes were read. Errno errors pass through. */
export async function readFileBounded(path: string, limit: number): Promise<Uint8Array> {
  const fh = await fsp.open(path, 'r');
  try {
    const into = new BoundedChunks(limit);
    for (;;) {
      const buf = into.next();
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!into.took(buf, bytesRead)) return into.bytes();
    }
  } finally {
    await fh.close();
  }
}

/**
 * A regular file's bytes read synchronously, or {@link InputTooLargeError} once more than
 * `limit` bytes were read; null when `path` is not a regular file (a pipe, a device: read those
 * with {@link readFileBounded}). For a command's start: no round trips through the thread pool,
 * nothing more to load. Errno errors pass through.
 */
export function readRegularFileBoundedSync(path: string, limit: number): Uint8Array | null {
  // O_NONBLOCK: opening a FIFO does not wait for a writer (it is then left to readFileBounded).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) return null;
    const into = new BoundedChunks(limit);
    for (;;) {
      const buf = into.next();
      if (!into.took(buf, readSync(fd, buf, 0, buf.length, null))) return into.bytes();
    }
  } finally {
    closeSync(fd);
  }
}

/** A stream's bytes (strings as UTF-8), or {@link InputTooLargeError} once more than `limit` arrived. */
export async function readStreamBounded(stream: AsyncIterable<unknown>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of stream) {
    const bytes = typeof c === 'string' ? new TextEncoder().encode(c) : new Uint8Array(c as Uint8Array);
    total += bytes.length;
    if (total > limit) throw new InputTooLargeError(limit); // leaving the loop stops the stream
    chunks.push(bytes);
  }
  return join(chunks, total);
}

/**
 * Where EIF bytes come from. The reader walks an image front to back once, so any sequence of
 * chunks will do: a `Uint8Array`, a browser `Blob`/`File`, a `ReadableStream`, an (async)
 * iterable of chunks, or a {@link SizedSource} (re-readable, with a known size; the Node helpers
 * make one from a file). Memory stays bounded by the chunk size, whatever the image size.
 * @module
 */

/** A re-readable byte source of known size (what the builder needs for its inputs). */
export interface SizedSource {
  readonly size: number;
  /** A fresh pass over all the bytes, front to back. */
  chunks(): AsyncIterable<Uint8Array>;
}

export type EifSource =
  | Uint8Array
  | Blob
  | SizedSource
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

/** Largest piece handed to a sink at once: small enough that the CRC and the hashes that read it after one another find it in cache. */
export const PIPE_PIECE = 1 << 16;

/** Bytes read from a Blob at a time. */
export const BLOB_CHUNK = 1 << 20;

function isSized(s: unknown): s is SizedSource {
  return typeof s === 'object' && s !== null && typeof (s as SizedSource).size === 'number' && typeof (s as SizedSource).chunks === 'function';
}

function isBlob(s: unknown): s is Blob {
  return typeof Blob !== 'undefined' && s instanceof Blob;
}

async function* blobChunks(blob: Blob): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < blob.size; o += BLOB_CHUNK) {
    yield new Uint8Array(await blob.slice(o, Math.min(blob.size, o + BLOB_CHUNK)).arrayBuffer());
  }
}

async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Turns any {@link EifSource} into its size (when known) and one pass of chunks. */
export function openSource(source: EifSource): { size: number | undefined; chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> } {
  if (source instanceof Uint8Array) return { size: source.length, chunks: [source] };
  if (isBlob(source)) return { size: source.size, chunks: blobChunks(source) };
  if (isSized(source)) return { size: source.size, chunks: source.chunks() };
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) return { size: undefined, chunks: streamChunks(source) };
  return { size: undefined, chunks: source as AsyncIterable<Uint8Array> | Iterable<Uint8Array> };
}

/** A re-readable view of a Uint8Array or Blob, or the SizedSource itself. */
export function sizedSource(input: Uint8Array | Blob | SizedSource): SizedSource {
  if (input instanceof Uint8Array) return { size: input.length, chunks: async function* () { yield input; } };
  if (isBlob(input)) return { size: input.size, chunks: () => blobChunks(input) };
  return input;
}

/**
 * Pulls exact byte counts out of a chunk sequence, tracking the file position. Small reads
 * (headers) are copied into one buffer; large ones (section data) are handed on chunk by chunk.
 */
export class ChunkReader {
  position = 0;
  private readonly it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>;
  private pending: Uint8Array = new Uint8Array(0);
  private done = false;

  constructor(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.it = Symbol.asyncIterator in chunks ? chunks[Symbol.asyncIterator]() : (chunks as Iterable<Uint8Array>)[Symbol.iterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.pending.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      if (!(r.value instanceof Uint8Array)) throw new TypeError('EIF source yielded something other than a Uint8Array');
      this.pending = r.value;
    }
    return true;
  }

  /** Up to `n` bytes, copied; fewer only at the end of the input. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n && (await this.fill())) {
      const take = Math.min(n - got, this.pending.length);
      out.set(this.pending.subarray(0, take), got);
      this.pending = this.pending.subarray(take);
      got += take;
    }
    this.position += got;
    return got === n ? out : out.subarray(0, got);
  }

  /** Hands the next `n` bytes to `sink` in pieces (views, valid during the call); returns the count passed. */
  async pipe(n: number, sink: (chunk: Uint8Array) => void): Promise<number> {
    let left = n;
    // One await per chunk of the source, not per piece: the pieces of a chunk go out in a plain loop.
    while (left > 0 && (this.pending.length > 0 || (await this.fill()))) {
      while (left > 0 && this.pending.length > 0) {
        const take = Math.min(left, this.pending.length, PIPE_PIECE);
        sink(this.pending.subarray(0, take));
        this.pending = this.pending.subarray(take);
        left -= take;
        this.position += take;
      }
    }
    return n - left;
  }

  /** True when no bytes remain. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /** Stops the underlying iterator early (closes files and streams). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

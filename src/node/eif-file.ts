/**
 * EIF files on Node: a file as a re-readable byte source, node:crypto's SHA-384 and node:zlib's
 * CRC-32 plugged into the core (much faster than pure JS on large images), and one-call helpers
 * that measure a file or turn it into a boot profile.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { eifBootProfile, type EifBootParent, type EifBootProfile } from '../eif/boot-profile.js';
import { crc32 as jsCrc32, type Crc32Function } from '../eif/crc32.js';
import type { Sha384Factory, Sha384Hasher } from '../eif/hash.js';
import { measureEif, type EifMeasurement } from '../eif/measure.js';
import { assertEifSignature } from '../eif/signature-check.js';
import { EifFormatError } from '../eif/errors.js';
import type { SizedSource } from '../eif/source.js';
import { WorkerHashError, workerSha384 } from './worker-sha384.js';

/** Bytes read from a file at a time. */
export const FILE_CHUNK = 1 << 20;

/** Told the bytes read so far in the current pass over a file, and the file's size. */
export type ReadProgress = (bytesRead: number, size: number) => void;

async function* counted(chunks: AsyncIterable<Uint8Array>, size: number, onProgress: ReadProgress): AsyncGenerator<Uint8Array> {
  let n = 0;
  onProgress(0, size);
  for await (const c of chunks) {
    n += c.length;
    yield c;
    onProgress(n, size);
  }
}

async function* reusedChunks(path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(FILE_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * A file as a {@link SizedSource} (its size is taken now; each pass opens the file anew).
 * With `reuseBuffer`, every chunk is the same 1 MiB buffer, refilled: no garbage however large
 * the file, but a consumer must be done with a chunk before asking for the next one (true of
 * the reader; not of a write stream). `onProgress` is told the bytes read after each chunk of
 * each pass.
 */
export async function fileSource(path: string, options: { reuseBuffer?: boolean; onProgress?: ReadProgress } = {}): Promise<SizedSource> {
  const { size } = await stat(path);
  const { onProgress } = options;
  const open = () => (options.reuseBuffer ? reusedChunks(path) : (createReadStream(path, { highWaterMark: FILE_CHUNK }) as AsyncIterable<Uint8Array>));
  return { size, chunks: onProgress ? () => counted(open(), size, onProgress) : open };
}

function wrap(h: Hash): Sha384Hasher {
  return {
    update: (d) => void h.update(d),
    digest: () => new Uint8Array(h.digest()),
    clone: () => wrap(h.copy()),
  };
}

/** SHA-384 from node:crypto (OpenSSL). */
export const nodeSha384: Sha384Factory = () => wrap(createHash('sha384'));

/** CRC-32 from node:zlib when this Node has it (20.15+), else the pure-JS one. */
export const nodeCrc32: Crc32Function =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (crc, chunk) => (zlib as unknown as { crc32(d: Uint8Array, v: number): number }).crc32(chunk, crc)
    : jsCrc32;

/** Files at least this large get PCR2's hash chain on a worker thread when there are 2+ cores. */
export const PARALLEL_MEASURE_MIN_SIZE = 32 << 20;

export interface MeasureEifFileOptions {
  /**
   * Hash PCR2's chain on a worker thread (default: when the file is at least
   * {@link PARALLEL_MEASURE_MIN_SIZE} bytes and this process may use two or more cores).
   */
  readonly parallel?: boolean;
  /** Told the bytes read so far in each pass over the file (for a progress display). */
  readonly onProgress?: ReadProgress | undefined;
}

/**
 * Measures an EIF file with the native hash and CRC. Throws EifFormatError and file-system errors.
 * PCR0 and PCR2 both hash the application ramdisk from different starting states; on two or
 * more cores the PCR2 chain runs on a worker thread, so the wall time is about one hash pass.
 * If that thread fails the file is measured again on this thread alone.
 */
export async function measureEifFile(path: string, options: MeasureEifFileOptions = {}): Promise<EifMeasurement> {
  const source = await fileSource(path, { reuseBuffer: true, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  const parallel = options.parallel ?? (source.size >= PARALLEL_MEASURE_MIN_SIZE && availableParallelism() >= 2);
  if (parallel) {
    let pcr2: ReturnType<typeof workerSha384> | null = null;
    try {
      pcr2 = workerSha384();
    } catch {
      // No worker thread available: measure on this thread.
    }
    if (pcr2 !== null) {
      const hasher = pcr2;
      try {
        return await measureEif(source, { sha384: nodeSha384, crc32: nodeCrc32, pcr2Sha384: () => hasher });
      } catch (e) {
        if (!(e instanceof WorkerHashError)) throw e;
      } finally {
        hasher.dispose();
      }
    }
  }
  return measureEif(source, { sha384: nodeSha384, crc32: nodeCrc32 });
}

/**
 * What a hypervisor would boot from an EIF file: refuses a bad CRC (as QEMU and Nitro do) and a
 * signed image whose signature does not check or whose certificate is not valid at `now` (as
 * `nitro-cli run-enclave` does). Returns the `pcrs`/`instanceId` device options. `onProgress`
 * is told the bytes read in each pass.
 */
export async function bootProfileFromEifFile(path: string, parent: EifBootParent = {}, now: Date = new Date(), onProgress?: ReadProgress): Promise<EifBootProfile> {
  const m = await measureEifFile(path, { onProgress });
  if (!m.layout.crc.ok) {
    const h = (n: number) => n.toString(16).padStart(8, '0');
    throw new EifFormatError('BAD_CRC', 0x220, `CRC mismatch: the header holds ${h(m.layout.crc.stored)} but the image's CRC-32 is ${h(m.layout.crc.computed)}`);
  }
  assertEifSignature(m, now);
  return eifBootProfile(m.pcrs, parent);
}

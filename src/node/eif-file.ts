/**
 * EIF files on Node: a file as a re-readable byte source, node:crypto's SHA-384 and node:zlib's
 * CRC-32 plugged into the core (much faster than pure JS on large images), and one-call helpers
 * that measure a file or turn it into a boot profile.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
// node:fs's lazy `promises` (not node:fs/promises): describe-eif never loads it.
import { closeSync, createReadStream, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { eifBootProfile, type EifBootParent, type EifBootProfile } from '../eif/boot-profile.js';
import { crc32 as jsCrc32, type Crc32Function } from '../eif/crc32.js';
import type { Sha384Factory, Sha384Hasher } from '../eif/hash.js';
import { measureEif, type EifByteRange, type EifMeasurement } from '../eif/measure.js';
import { EIF_HEADER_SIZE, EIF_SECTION_HEADER_SIZE, SECTION_TYPES } from '../eif/format.js';
import { decodeHeader } from '../eif/header.js';
import { assertEifSignature } from '../eif/signature-check.js';
import type { EcdsaVerifier } from '../eif/cose-sign1.js';
import { nodeEcdsaVerifier } from './ecdsa-verifier.js';
import { EifFormatError } from '../eif/errors.js';
import type { SizedSource } from '../eif/source.js';
import { EifWorkerError, type Pcr2Worker, startPcr2Worker } from './eif-worker.js';

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
  const fh = await fsp.open(path, 'r');
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
  const { size } = await fsp.stat(path);
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
export const nodeCrc32: Crc32Function = (crc, chunk) => {
  zlibCrc32 ??= (process.getBuiltinModule('node:zlib') as { crc32?: (d: Uint8Array, v: number) => number }).crc32 ?? null;
  return zlibCrc32 ? zlibCrc32(chunk, crc) : jsCrc32(crc, chunk);
};
/** node:zlib's crc32, looked up at the first call (null: this Node has none). */
let zlibCrc32: ((data: Uint8Array, value: number) => number) | null | undefined;

/** Files at least this large get PCR2's hash chain on a worker thread when there are 2+ cores. */
export const PARALLEL_MEASURE_MIN_SIZE = 32 << 20;
/** ... and only when PCR2 covers at least this many bytes (less is not worth a thread). */
export const PARALLEL_PCR2_MIN_SIZE = 8 << 20;

/** How {@link measureEifFile} used threads, told once when it is done. */
export interface MeasureThreadsReport {
  /** True when PCR2's chain ran on a worker thread. */
  readonly worker: boolean;
  /** Why not, when it did not (for example `parallel: false`, one core, a small file). */
  readonly reason?: string;
  /** Set when the worker thread failed and the file was measured again on one thread: why it failed. */
  readonly failure?: string;
  /** Bytes of the CRC-32 computed on the worker thread (the rest on the reading thread). */
  readonly workerCrcBytes: number;
}

export interface MeasureEifFileOptions {
  /**
   * Hash PCR2's chain on a worker thread (default: when the file is at least
   * {@link PARALLEL_MEASURE_MIN_SIZE} bytes, PCR2 covers at least {@link PARALLEL_PCR2_MIN_SIZE}
   * of them and this process may use two or more cores).
   */
  readonly parallel?: boolean;
  /** Told the bytes read so far in each pass over the file (for a progress display). */
  readonly onProgress?: ReadProgress | undefined;
  /** Told how threads were used (and why a worker failed, when it did). */
  readonly onThreads?: ((report: MeasureThreadsReport) => void) | undefined;
  /** The verifier a signature will be checked with (see measureEif's option; e.g. {@link nodeEcdsaVerifier}). */
  readonly signatureVerifier?: EcdsaVerifier | undefined;
}

/** Bytes read between two turns given to the event loop while a file is measured. */
const YIELD_EVERY = 16 << 20;

/**
 * The chunks of an open file, read on this thread into one reused buffer: a read from the page
 * cache costs less than handing it to libuv's pool and waiting for the answer (which also takes
 * CPU from the two hashing threads). Every {@link YIELD_EVERY} bytes the event loop gets a turn.
 */
async function* fileChunks(fd: number, size: number, onProgress?: ReadProgress): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(FILE_CHUNK);
  let pos = 0;
  onProgress?.(0, size);
  for (;;) {
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, pos + n);
      if (r === 0) break;
      n += r;
    }
    if (n === 0) return;
    pos += n;
    yield n === buf.length ? buf : buf.subarray(0, n);
    onProgress?.(pos, size);
    if (pos % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
  }
}

/** PCR2's byte ranges from the header's section table, or null when the header does not read cleanly (the reader then reports why). */
function pcr2Ranges(fd: number, size: number): EifByteRange[] | null {
  try {
    const head = new Uint8Array(EIF_HEADER_SIZE);
    if (readSync(fd, head, 0, head.length, 0) !== head.length) return null;
    const header = decodeHeader(head);
    const ranges: EifByteRange[] = [];
    const sh = new Uint8Array(EIF_SECTION_HEADER_SIZE);
    let ramdisks = 0;
    for (let i = 0; i < header.numSections; i++) {
      const at = header.sectionOffsets[i]!;
      const length = header.sectionSizes[i]!;
      if (at + EIF_SECTION_HEADER_SIZE + length > size) return null;
      if (readSync(fd, sh, 0, sh.length, at) !== sh.length) return null;
      if (new DataView(sh.buffer).getUint16(0) !== SECTION_TYPES.ramdisk) continue;
      if (ramdisks++ > 0) ranges.push({ offset: at + EIF_SECTION_HEADER_SIZE, length });
    }
    return ranges;
  } catch {
    return null;
  }
}

const sameRanges = (a: readonly EifByteRange[], b: readonly EifByteRange[]) => a.length === b.length && a.every((r, i) => r.offset === b[i]!.offset && r.length === b[i]!.length);

/**
 * Measures an EIF file with the native hash and CRC. Throws EifFormatError and file-system errors.
 * PCR0 and PCR2 both hash the application ramdisk from different starting states; on two or
 * more cores a worker thread reads and hashes PCR2's bytes itself and takes part of the CRC
 * (src/node/eif-worker.ts), so the wall time is about one hash pass. If that thread fails the
 * file is measured again on this thread alone (`onThreads` is told why).
 */
export async function measureEifFile(path: string, options: MeasureEifFileOptions = {}): Promise<EifMeasurement> {
  return measureEifFileWith(path, options, startPcr2Worker);
}

/** {@link measureEifFile} with the worker's starter given (tests give one that fails). @internal */
export async function measureEifFileWith(path: string, options: MeasureEifFileOptions, start: typeof startPcr2Worker): Promise<EifMeasurement> {
  // Opened and sized synchronously: a few microseconds, where a first round trip through libuv's pool costs milliseconds.
  const fd = openSync(path, 'r');
  let worker: Pcr2Worker | null = null;
  const report = (r: MeasureThreadsReport) => options.onThreads?.(r);
  const verifierOption = options.signatureVerifier ? { signatureVerifier: options.signatureVerifier } : {};
  try {
    const { size } = fstatSync(fd);
    const source = (): SizedSource => ({ size, chunks: () => fileChunks(fd, size, options.onProgress) });
    let reason: string | undefined;
    if (options.parallel === false) reason = 'parallel: false';
    else if (options.parallel === undefined && size < PARALLEL_MEASURE_MIN_SIZE) reason = `the file is smaller than ${PARALLEL_MEASURE_MIN_SIZE >> 20} MiB`;
    else if (options.parallel === undefined && process.getBuiltinModule('node:os').availableParallelism() < 2) reason = 'this process may use one core';
    let ranges: EifByteRange[] | null = null;
    if (reason === undefined) {
      ranges = pcr2Ranges(fd, size);
      const pcr2Bytes = ranges?.reduce((n, r) => n + r.length, 0) ?? 0;
      if (ranges === null) reason = 'the section table does not read cleanly';
      else if (options.parallel === undefined && pcr2Bytes < PARALLEL_PCR2_MIN_SIZE) reason = `PCR2 covers less than ${PARALLEL_PCR2_MIN_SIZE >> 20} MiB`;
    }
    let failure: string | undefined;
    if (reason === undefined) {
      try {
        worker = start(fd, ranges!, size, nodeCrc32);
      } catch (e) {
        failure = `no worker thread could be started: ${(e as Error).message}`;
      }
    }
    if (worker !== null) {
      const w = worker;
      try {
        const m = await measureEif(source(), {
          ...verifierOption,
          sha384: nodeSha384,
          crc32Accumulator: w.crc,
          pcr2Digest: (found) => {
            if (!sameRanges(found, w.ranges)) throw new EifWorkerError('the section table changed while the file was read');
            return w.result();
          },
        });
        report(w.usedWorker ? { worker: true, workerCrcBytes: w.workerCrcBytes } : { worker: false, reason: 'the worker thread had not started when this thread needed its result', workerCrcBytes: 0 });
        return m;
      } catch (e) {
        if (!(e instanceof EifWorkerError)) throw e;
        failure = e.message;
      } finally {
        worker = null;
        await w.stop();
      }
    }
    const m = await measureEif(source(), { ...verifierOption, sha384: nodeSha384, crc32: nodeCrc32 });
    report(failure !== undefined ? { worker: false, reason: 'the worker thread failed', failure, workerCrcBytes: 0 } : { worker: false, reason: reason!, workerCrcBytes: 0 });
    return m;
  } finally {
    await worker?.stop();
    closeSync(fd);
  }
}

/**
 * What a hypervisor would boot from an EIF file: refuses a bad CRC (as QEMU and Nitro do) and a
 * signed image whose signature does not check or whose certificate is not valid at `now` (as
 * `nitro-cli run-enclave` does). Returns the `pcrs`/`instanceId` device options. `onProgress`
 * is told the bytes read in each pass, `onThreads` how threads were used (see {@link measureEifFile}).
 */
export async function bootProfileFromEifFile(
  path: string,
  parent: EifBootParent = {},
  now: Date = new Date(),
  onProgress?: ReadProgress,
  onThreads?: MeasureEifFileOptions['onThreads'],
): Promise<EifBootProfile> {
  const m = await measureEifFile(path, { onProgress, onThreads, signatureVerifier: nodeEcdsaVerifier });
  if (!m.layout.crc.ok) {
    const h = (n: number) => n.toString(16).padStart(8, '0');
    throw new EifFormatError('BAD_CRC', 0x220, `CRC mismatch: the header holds ${h(m.layout.crc.stored)} but the image's CRC-32 is ${h(m.layout.crc.computed)}`);
  }
  assertEifSignature(m, now, nodeEcdsaVerifier);
  return eifBootProfile(m.pcrs, parent);
}

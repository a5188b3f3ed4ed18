/**
 * The second thread of an EIF measurement. PCR0 and PCR2 both hash the application ramdisk,
 * from different starting states, so one thread needs two SHA-384 passes over it. Here a worker
 * thread reads PCR2's byte ranges itself, through the same file descriptor (positional reads:
 * nothing is copied between the threads), and hashes them, while the reading thread hashes
 * PCR0 and PCR1. The CRC-32 of the image is shared out in blocks of {@link CRC_BLOCK} bytes
 * (larger past 64 GiB): each block inside PCR2's ranges goes to whichever thread reaches it
 * first (one atomic compare-and-swap per block), so the thread that is ahead takes more of the
 * CRC and both end at about the same time, whatever the worker's start-up delay or the load on
 * the other core.
 * {@link SplitCrc} joins the blocks' CRCs in file order ({@link crc32Combine}).
 *
 * The worker never blocks the reading thread: if it has not started by the time that thread
 * needs its result, the reading thread takes the work back ({@link Pcr2Worker.result} then
 * hashes the ranges itself). A worker that fails, exits or makes no progress for
 * {@link WORKER_STALL_TIMEOUT_MS} makes `result` reject with {@link EifWorkerError}, whose
 * message is the reason.
 * @module
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { type Crc32Accumulator, type Crc32Function, crc32Combine } from '../eif/crc32.js';
import type { EifByteRange } from '../eif/measure.js';

/** Bytes per CRC block (more for files over {@link MAX_CRC_BLOCKS} MiB, so the claim table stays small). */
export const CRC_BLOCK = 1 << 20;
/** At most this many CRC blocks (the shared claim and CRC tables are 4 bytes per block each). */
export const MAX_CRC_BLOCKS = 1 << 16;
/** Bytes per read on the worker (the reading thread's reads are as large and as aligned). */
const READ_SIZE = 1 << 20;
/** How long the reading thread waits for a running worker that makes no progress before giving up on it. */
export const WORKER_STALL_TIMEOUT_MS = 30_000;

/** How long `stop` waits for the worker to exit before the caller may close the descriptor anyway. */
const EXIT_WAIT_MS = 2_000;

/** The worker thread could not hash PCR2's ranges; the message says why. */
export class EifWorkerError extends Error {
  override readonly name = 'EifWorkerError';
}

// Control words (Int32): worker state, blocks hashed so far (progress), blocks whose CRC the worker computed.
const STATE = 0;
const PROGRESS = 1;
const CRC_BLOCKS = 2;
const CONTROL_WORDS = 3;
// STATE values.
const IDLE = 0;
const RUNNING = 1;
const ABANDONED = 2;
const DONE = 3;
// Block claims.
const UNCLAIMED = 0;
const BY_READER = 1;
const BY_WORKER = 2;

// The worker: claims the job (IDLE -> RUNNING unless the reading thread took it back), reads
// each range in pieces of at most READ_SIZE aligned to it, computes the CRC of every whole block
// it claims first, hashes everything, then posts the digest; it stops before its next read when
// the job was abandoned. It loads modules with require, or import() if Node ever evaluated the
// source as a module.
const WORKER_SOURCE = `
const load = typeof require === 'function' ? (m) => Promise.resolve(require(m)) : (m) => import(m);
Promise.all([load('node:worker_threads'), load('node:fs'), load('node:crypto'), load('node:zlib')]).then(([{ workerData, parentPort }, fs, { createHash }, zlib]) => {
  const { fd, ranges, block, read, control, claims } = workerData;
  const [STATE, PROGRESS, CRC_BLOCKS, IDLE, RUNNING, ABANDONED, DONE, BY_WORKER] = workerData.layout;
  const c = new Int32Array(control);
  const claim = new Int32Array(claims);
  const crcs = new Int32Array(workerData.crcs);
  if (Atomics.compareExchange(c, STATE, IDLE, RUNNING) !== IDLE) return;
  try {
    const crc32 = typeof zlib.crc32 === 'function' ? zlib.crc32 : null;
    const h = createHash('sha384');
    const buf = new Uint8Array(read);
    for (const [offset, length] of ranges) {
      const end = offset + length;
      let mine = false;
      let crc = 0;
      for (let pos = offset; pos < end; ) {
        if (Atomics.load(c, STATE) === ABANDONED) return;
        const b = Math.floor(pos / block);
        if (pos === b * block) {
          // A block starts: it is ours if it lies wholly in this range and we are first to it.
          mine = crc32 !== null && (b + 1) * block <= end && Atomics.compareExchange(claim, b, 0, BY_WORKER) === 0;
          crc = 0;
        }
        const n = Math.min(end, (Math.floor(pos / read) + 1) * read) - pos;
        for (let got = 0; got < n; ) {
          const r = fs.readSync(fd, buf, got, n - got, pos + got);
          if (r === 0) throw new Error('the file ends at byte ' + (pos + got) + ', inside the ramdisk data at ' + offset + ' to ' + end + ' (it shrank while it was read)');
          got += r;
        }
        const piece = n === read ? buf : buf.subarray(0, n);
        if (mine) {
          crc = crc32(piece, crc);
          if (pos + n === (b + 1) * block) {
            Atomics.store(crcs, b, crc | 0);
            Atomics.add(c, CRC_BLOCKS, 1);
          }
        }
        h.update(piece);
        Atomics.add(c, PROGRESS, 1);
        pos += n;
      }
    }
    const digest = new Uint8Array(h.digest());
    Atomics.store(c, STATE, DONE);
    parentPort.postMessage({ digest });
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.message) || e) });
  }
});
`;

/** PCR2's hash chain (and a share of the CRC) on a worker thread, over ranges of an open file. */
export interface Pcr2Worker {
  /** The ranges given to the worker. */
  readonly ranges: readonly EifByteRange[];
  /** The CRC accumulator for the reading thread: it skips the blocks the worker claimed. */
  readonly crc: SplitCrc;
  /**
   * The SHA-384 of the ranges: the worker's, or (when it had not started yet) this thread's
   * own, read through the same descriptor. Rejects with {@link EifWorkerError}.
   */
  result(): Promise<Uint8Array>;
  /** Stops the worker (resolves once it can no longer touch the descriptor). */
  stop(): Promise<void>;
  /** Whether the worker did the hashing (false when this thread took it back). */
  readonly usedWorker: boolean;
  /** Whether the worker is on the job or has done it (false before it starts and once abandoned). */
  readonly started: boolean;
  /** Bytes of the CRC the worker computed. */
  readonly workerCrcBytes: number;
  /** Bytes per CRC block. */
  readonly crcBlock: number;
}

/** Which blocks lie wholly inside one of the ranges (only those can go to either thread). */
function claimableBlocks(ranges: readonly EifByteRange[], blocks: number, block: number): Uint8Array {
  const ok = new Uint8Array(blocks);
  for (const r of ranges) {
    const first = Math.ceil(r.offset / block);
    const last = Math.floor((r.offset + r.length) / block); // exclusive
    for (let b = first; b < last && b < blocks; b++) ok[b] = 1;
  }
  return ok;
}

/**
 * The reading thread's side of the CRC: pieces arrive in file order with their offsets; for a
 * block the worker may also compute, the first piece decides (compare-and-swap) who does it.
 * `result` waits for the worker (through `settle`) and joins every run and block in order.
 */
export class SplitCrc implements Crc32Accumulator {
  private readonly runs: number[] = []; // [crc, length] of this thread's runs, or [-1 - block, length] for the worker's blocks
  private crc = 0;
  private length = 0;
  private block = -1;
  private mine = true;

  constructor(
    private readonly fn: Crc32Function,
    private readonly claimable: Uint8Array,
    private readonly claims: Int32Array,
    private readonly crcs: Int32Array,
    private readonly blockSize: number,
    private readonly settle: () => Promise<void>,
  ) {}

  /** Feeds the bytes at `offset` (pieces contiguous, in file order). */
  update(chunk: Uint8Array, offset: number): void {
    for (let o = 0; o < chunk.length; ) {
      const at = offset + o;
      const b = Math.floor(at / this.blockSize);
      const n = Math.min(chunk.length - o, (b + 1) * this.blockSize - at);
      if (b !== this.block) {
        this.block = b;
        const mine = this.claimable[b] !== 1 || Atomics.compareExchange(this.claims, b, UNCLAIMED, BY_READER) === UNCLAIMED;
        if (!mine) {
          this.close();
          this.runs.push(-1 - b, this.blockSize);
        }
        this.mine = mine;
      }
      if (this.mine) {
        this.crc = this.fn(this.crc, n === chunk.length ? chunk : chunk.subarray(o, o + n));
        this.length += n;
      }
      o += n;
    }
  }

  private close(): void {
    if (this.length > 0) this.runs.push(this.crc >>> 0, this.length);
    this.crc = 0;
    this.length = 0;
  }

  /** The CRC of everything fed, the worker's blocks included (waits for the worker). */
  async result(): Promise<number> {
    this.close();
    if (this.runs.some((x, i) => i % 2 === 0 && x < 0)) await this.settle();
    let c = 0;
    for (let i = 0; i < this.runs.length; i += 2) {
      const x = this.runs[i]!;
      c = crc32Combine(c, x < 0 ? Atomics.load(this.crcs, -1 - x) >>> 0 : x, this.runs[i + 1]!);
    }
    return c;
  }
}

/** SHA-384 of ranges of `fd`, read on this thread (when the worker never started). */
function hashRanges(fd: number, ranges: readonly EifByteRange[], block: number): Uint8Array {
  const h = createHash('sha384');
  const buf = new Uint8Array(block);
  for (const r of ranges) {
    for (let pos = r.offset, end = r.offset + r.length; pos < end; ) {
      const n = readSync(fd, buf, 0, Math.min(block, end - pos), pos);
      if (n === 0) throw new EifWorkerError(`the file ends at byte ${pos}, inside the ramdisk data at ${r.offset} to ${end} (it shrank while it was read)`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
  }
  return new Uint8Array(h.digest());
}

/**
 * Starts a worker hashing `ranges` of the open file `fd` (which must stay open until `stop`
 * resolved or `result` settled). `fileSize` bounds the CRC blocks. Throws when no worker can
 * be created.
 */
export function startPcr2Worker(
  fd: number,
  ranges: readonly EifByteRange[],
  fileSize: number,
  crc32: Crc32Function,
  options: { stallTimeoutMs?: number; maxCrcBlocks?: number } = {},
): Pcr2Worker {
  const stallTimeout = options.stallTimeoutMs ?? WORKER_STALL_TIMEOUT_MS;
  let block = CRC_BLOCK;
  while (Math.ceil(fileSize / block) > (options.maxCrcBlocks ?? MAX_CRC_BLOCKS)) block *= 2;
  const blocks = Math.ceil(fileSize / block);
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const claims = new SharedArrayBuffer(blocks * 4);
  const crcs = new SharedArrayBuffer(blocks * 4);
  const c = new Int32Array(control);
  const worker = new (process.getBuiltinModule('node:worker_threads').Worker)(WORKER_SOURCE, {
    eval: true,
    execArgv: [], // not this process's flags (--input-type=module, --cpu-prof, ...)
    workerData: {
      fd,
      ranges: ranges.map((r) => [r.offset, r.length]),
      block,
      read: READ_SIZE,
      control,
      claims,
      crcs,
      layout: [STATE, PROGRESS, CRC_BLOCKS, IDLE, RUNNING, ABANDONED, DONE, BY_WORKER],
    },
    stdout: false,
    stderr: false,
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => ((exited = true), resolve())));
  // The outcome as soon as the worker reports it; `result` decides what to do with it.
  const outcome = new Promise<Uint8Array>((resolve, reject) => {
    worker.on('message', (m: { digest?: Uint8Array; error?: string }) => (m.digest ? resolve(m.digest) : reject(new EifWorkerError(`the hashing thread failed: ${m.error}`))));
    worker.on('error', (e) => reject(new EifWorkerError(`the hashing thread failed: ${e.message}`)));
    worker.once('exit', (code) => reject(new EifWorkerError(`the hashing thread exited (code ${code}) before it finished`)));
  });
  outcome.catch(() => {}); // observed through result()
  worker.unref();

  let usedWorker = true;
  let settled: Promise<Uint8Array> | null = null;
  const result = (): Promise<Uint8Array> =>
    (settled ??= (async () => {
      if (Atomics.compareExchange(c, STATE, IDLE, ABANDONED) === IDLE) {
        // Not started yet: this thread does it (no block was claimed by the worker).
        usedWorker = false;
        void worker.terminate();
        return hashRanges(fd, ranges, READ_SIZE);
      }
      worker.ref(); // keep the process alive while it is awaited
      let timer: ReturnType<typeof setInterval> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        let seen = Atomics.load(c, PROGRESS);
        let still = Date.now();
        timer = setInterval(() => {
          const p = Atomics.load(c, PROGRESS);
          if (p !== seen || Atomics.load(c, STATE) === DONE) {
            seen = p;
            still = Date.now();
          } else if (Date.now() - still > stallTimeout) {
            void worker.terminate();
            reject(new EifWorkerError(`the hashing thread made no progress for ${stallTimeout} ms`));
          }
        }, Math.min(1000, stallTimeout));
      });
      try {
        return await Promise.race([outcome, stalled]);
      } finally {
        clearInterval(timer);
        worker.unref();
      }
    })());

  const crc = new SplitCrc(crc32, claimableBlocks(ranges, blocks, block), new Int32Array(claims), new Int32Array(crcs), block, async () => {
    await result();
  });
  return {
    ranges,
    crc,
    result,
    async stop() {
      for (;;) {
        const state = Atomics.load(c, STATE);
        // IDLE -> ABANDONED: it will never read. RUNNING -> ABANDONED: it stops before its next read.
        if ((state === IDLE || state === RUNNING) && Atomics.compareExchange(c, STATE, state, ABANDONED) !== state) continue;
        void worker.terminate();
        if (state === RUNNING && !exited) {
          // Wait until it can no longer touch the descriptor (a read stuck in the kernel delays the exit).
          let wait: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([exit, new Promise((r) => (wait = setTimeout(r, EXIT_WAIT_MS)))]);
          clearTimeout(wait);
        }
        return;
      }
    },
    get usedWorker() {
      return usedWorker;
    },
    get started() {
      const state = Atomics.load(c, STATE);
      return state === RUNNING || state === DONE;
    },
    crcBlock: block,
    get workerCrcBytes() {
      return Atomics.load(c, CRC_BLOCKS) * block;
    },
  };
}

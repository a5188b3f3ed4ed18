/**
 * SHA-384 on a worker thread: a {@link Sha384Hasher} whose `update` copies the bytes into a
 * small ring of shared memory and returns, while a worker thread hashes them with node:crypto.
 * Measuring an EIF runs two independent hash chains over the application ramdisk (PCR0 and
 * PCR2 start from different states); with this one of them runs on a second core, so the
 * measurement takes about one hash pass of wall time instead of two.
 *
 * Memory is bounded by the ring ({@link RING_SLOTS} x {@link RING_SLOT_SIZE}); `update` waits
 * when the worker is that far behind. `digest` waits for the worker to finish. If the worker
 * fails, has not started after {@link WORKER_START_TIMEOUT_MS} or stops making progress for
 * {@link WORKER_STALL_TIMEOUT_MS}, `update`/`digest` throw {@link WorkerHashError} (the caller
 * then hashes on its own thread instead). Waiting blocks this thread (Atomics.wait), which is
 * what a synchronous hash does too.
 * @module
 */
import { Worker } from 'node:worker_threads';
import type { Sha384Hasher } from '../eif/hash.js';

/** Slots in the ring and bytes per slot: 4 MiB of shared memory in all. */
export const RING_SLOTS = 16;
export const RING_SLOT_SIZE = 256 * 1024;
/** How long `update`/`digest` wait for a worker that has not started before giving up on it. */
export const WORKER_START_TIMEOUT_MS = 5_000;
/** How long they wait for a running worker that makes no progress (it died) before giving up. */
export const WORKER_STALL_TIMEOUT_MS = 30_000;

/** The worker could not hash (it failed or never started); the bytes given so far are lost. */
export class WorkerHashError extends Error {
  override readonly name = 'WorkerHashError';
}

// Control words (Int32): slots published, slots consumed, a signal bumped on every publish and
// on finish, worker state, then one length per slot.
const HEAD = 0;
const TAIL = 1;
const SIGNAL = 2;
const STATE = 3;
const FINAL = 4;
const LENGTHS = 5;
const CONTROL_WORDS = LENGTHS + RING_SLOTS;
// STATE values.
const IDLE = 0;
const RUNNING = 1;
const ABANDONED = 2;
const FAILED = 3;
const DONE = 4;

// The worker: claims the ring (IDLE -> RUNNING unless the owner gave up on it), hashes each
// published slot in order, and on FINAL writes the digest after the ring and reports DONE.
// Dynamic imports, so the source runs whether Node evaluates it as CommonJS or as a module.
const WORKER_SOURCE = `
Promise.all([import('node:worker_threads'), import('node:crypto')]).then(([{ workerData }, { createHash }]) => {
const c = new Int32Array(workerData.control);
const data = new Uint8Array(workerData.data);
const [HEAD, TAIL, SIGNAL, STATE, FINAL, LENGTHS, SLOTS, SLOT] = workerData.layout;
if (Atomics.compareExchange(c, STATE, 0, 1) === 0) {
  try {
    const h = createHash('sha384');
    let tail = 0;
    for (;;) {
      const signal = Atomics.load(c, SIGNAL);
      if (tail < Atomics.load(c, HEAD)) {
        const slot = tail % SLOTS;
        h.update(data.subarray(slot * SLOT, slot * SLOT + c[LENGTHS + slot]));
        Atomics.store(c, TAIL, ++tail);
        Atomics.notify(c, TAIL);
      } else if (Atomics.load(c, FINAL) === 1) {
        data.set(h.digest(), SLOTS * SLOT);
        Atomics.store(c, STATE, 4);
        Atomics.notify(c, STATE);
        break;
      } else {
        Atomics.wait(c, SIGNAL, signal);
      }
    }
  } catch (e) {
    Atomics.store(c, STATE, 3);
    Atomics.store(c, TAIL, -1);
    Atomics.notify(c, TAIL);
    Atomics.notify(c, STATE);
  }
}
});
`;

/** A {@link Sha384Hasher} on its own thread; `dispose` stops the thread if `digest` was never reached. */
export interface WorkerSha384 extends Sha384Hasher {
  dispose(): void;
}

/** A SHA-384 whose bytes are hashed on a new worker thread (one worker per hasher). */
export function workerSha384(options: { startTimeoutMs?: number; stallTimeoutMs?: number } = {}): WorkerSha384 {
  const startTimeout = options.startTimeoutMs ?? WORKER_START_TIMEOUT_MS;
  const stallTimeout = options.stallTimeoutMs ?? WORKER_STALL_TIMEOUT_MS;
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const shared = new SharedArrayBuffer(RING_SLOTS * RING_SLOT_SIZE + 48);
  const c = new Int32Array(control);
  const ring = new Uint8Array(shared);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    execArgv: [], // not this process's flags (--input-type=module, --cpu-prof, ...)
    workerData: { control, data: shared, layout: [HEAD, TAIL, SIGNAL, STATE, FINAL, LENGTHS, RING_SLOTS, RING_SLOT_SIZE] },
    stdout: false,
    stderr: false,
  });
  worker.unref();
  worker.on('error', () => {}); // reported through STATE; never an uncaught exception
  let progressAt = Date.now(); // last time the worker was seen starting or consuming a slot
  let seenTail = 0;
  let seenState = IDLE;
  let head = 0; // slots published
  let fill = 0; // bytes in slot `head % RING_SLOTS`
  let finished = false;

  /** Throws when the worker failed, or gives up on it when it did not start or stalled. */
  const check = (): void => {
    const state = Atomics.load(c, STATE);
    if (state === FAILED || state === ABANDONED) throw new WorkerHashError('the SHA-384 worker thread failed');
    const tail = Atomics.load(c, TAIL);
    const now = Date.now();
    if (tail !== seenTail || state !== seenState) {
      seenTail = tail;
      seenState = state;
      progressAt = now;
    }
    if (state === IDLE && now - progressAt > startTimeout) {
      if (Atomics.compareExchange(c, STATE, IDLE, ABANDONED) === IDLE) {
        void worker.terminate();
        throw new WorkerHashError(`the SHA-384 worker thread did not start within ${startTimeout} ms`);
      }
    }
    if (state === RUNNING && now - progressAt > stallTimeout) {
      void worker.terminate();
      throw new WorkerHashError(`the SHA-384 worker thread made no progress for ${stallTimeout} ms`);
    }
  };
  /** Waits until the slot about to be filled is free. */
  const waitForSlot = (): void => {
    for (;;) {
      const tail = Atomics.load(c, TAIL);
      if (tail === -1) check();
      if (head - tail < RING_SLOTS) return;
      check();
      Atomics.wait(c, TAIL, tail, 50);
    }
  };
  const publish = (): void => {
    c[LENGTHS + (head % RING_SLOTS)] = fill;
    Atomics.store(c, HEAD, ++head);
    Atomics.add(c, SIGNAL, 1);
    Atomics.notify(c, SIGNAL);
    fill = 0;
  };

  return {
    update(d: Uint8Array): void {
      if (finished) throw new Error('SHA-384 already finished');
      let o = 0;
      while (o < d.length) {
        if (fill === 0) waitForSlot();
        const n = Math.min(RING_SLOT_SIZE - fill, d.length - o);
        ring.set(d.subarray(o, o + n), (head % RING_SLOTS) * RING_SLOT_SIZE + fill);
        fill += n;
        o += n;
        if (fill === RING_SLOT_SIZE) publish();
      }
    },
    digest(): Uint8Array {
      if (finished) throw new Error('SHA-384 already finished');
      finished = true;
      if (fill > 0) publish();
      Atomics.store(c, FINAL, 1);
      Atomics.add(c, SIGNAL, 1);
      Atomics.notify(c, SIGNAL);
      for (;;) {
        const state = Atomics.load(c, STATE);
        if (state === DONE) break;
        check();
        Atomics.wait(c, STATE, state, 50);
      }
      const out = ring.slice(RING_SLOTS * RING_SLOT_SIZE, RING_SLOTS * RING_SLOT_SIZE + 48);
      void worker.terminate();
      return out;
    },
    clone(): Sha384Hasher {
      throw new Error('a worker-thread SHA-384 cannot be cloned');
    },
    dispose(): void {
      void worker.terminate();
    },
  };
}

/**
 * The Nitro Secure Module state machine.
 *
 * One {@link NsmDevice} is one /dev/nsm: a PCR bank, a module id, randomness and an attester.
 * Requests enter typed ({@link NsmDevice.request} and one method per request) or raw
 * ({@link NsmDevice.handleRaw}: CBOR bytes in, CBOR bytes out); both end in the same
 * `execute`. Requests take effect one at a time in arrival order, also when issued
 * concurrently; bad input gets the device's error response and changes nothing.
 * @module
 */
import type { AttesterFactory, Attester } from './attester.js';
import { type ErrorCode, NsmError } from './error-code.js';
import { MAX_PCRS, NSM_VERSION, PCR_LENGTH, RANDOM_SIZE } from './limits.js';
import { PcrBank } from './pcr-bank.js';
import { type RandomSource, SeededRandom, systemRandom } from './random.js';
import { ATTESTATION_FIELD_MAX, defaultModuleId, instanceIdOf, parseSeed, randomInstanceId } from './boot.js';
import { BOOT_MODES, type BootMode, bootModePcrs, syntheticImageId } from './enclave-boot.js';
import type { DeviceSha384 } from './sha384.js';
import { decodeRequest } from '../wire/decode-request.js';
import { encodeResponse } from '../wire/encode-response.js';
import type { NsmDescription, NsmRequest, NsmResponse } from '../wire/messages.js';
import type { AttestationOptions, Nsm, PcrDescription } from './nsm.js';
import { type FaultEvent, FaultPlan, type NsmFault, NsmDeviceGoneError } from './faults.js';

export interface NsmDeviceOptions {
  /**
   * How the enclave was started (default `enclave`): `enclave` sets PCR0-2 from the built-in
   * synthetic image and PCR4 from the parent instance id, as on a production enclave; `debug`
   * zeroes PCR0-2 and keeps PCR4; `bare` leaves every PCR zero, like QEMU's plain device.
   * `pcrs` is applied on top of any of them (see enclave-boot.ts).
   */
  readonly boot?: BootMode;
  /** module_id reported by DescribeNSM and in documents (default: shaped like a real one). */
  readonly moduleId?: string;
  /**
   * Parent instance id, `i-<17 hex>`: prefix of the default module_id and what PCR4 measures
   * (default: random, or from the seed; with `moduleId` given, the part before its `-enc`).
   */
  readonly instanceId?: string;
  /** PCR values set at power-on, before PCRs 0-15 are locked: index -> 48 bytes. */
  readonly pcrs?: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>>;
  /** Makes module_id, PCR0-2, GetRandom and every key or serial reproducible (bytes or hex). */
  readonly seed?: Uint8Array | string;
  /**
   * A function returning the time in milliseconds since the Unix epoch (default `Date.now`);
   * to freeze it, `() => Date.parse('2026-01-01T00:00:00Z')`. Read at construction for the
   * enclave's start time (in module_id) and at every attestation.
   */
  readonly clock?: () => number;
  /** Makes the attester (default: the committed test CA). */
  readonly attester?: AttesterFactory;
  /**
   * Injected faults, checked in order for every well-formed request: error answers, delays, or
   * the device disappearing (see faults.ts). Rewound by {@link NsmDevice.reset}; not part of
   * {@link NsmDevice.bootOptions} or snapshots.
   */
  readonly faults?: readonly NsmFault[];
  /** Told each time a fault hits a request (so a person can be told why a request failed). */
  readonly onFault?: (event: FaultEvent) => void;
  /**
   * Called whenever the device answers `InternalError`, with the request's name and the reason
   * (the wire answer stays exactly `{"Error":"InternalError"}`, as on a real device). The
   * typed methods also put the reason in the {@link NsmError}'s `cause`.
   */
  readonly onInternalError?: (event: InternalErrorEvent) => void;
  /**
   * The SHA-384 PCR extends and the boot measurements are computed with (default @noble/hashes,
   * pure JS). The bytes are the same whichever is used; a native one (nsm-emulator/node's
   * `nodeDeviceSha384`, node:crypto) only makes a device cheaper to start.
   */
  readonly sha384?: DeviceSha384;
}

/** Why the device answered `InternalError` to one request. */
export interface InternalErrorEvent {
  /** The request's name (`Attestation`, ...), or `unknown` for raw bytes that were not decoded. */
  readonly request: string;
  readonly reason: Error;
}


const defaultAttester: AttesterFactory = async (env) =>
  (await import('../attestation/default-attester.js')).defaultAttester(env);

function error(code: ErrorCode): NsmResponse {
  return { type: 'Error', code };
}

/** The reason behind each InternalError response object the device made (for NsmError.cause). */
const reasons = new WeakMap<NsmResponse, Error>();

/** A request's name for a report, never throwing whatever the caller passed. */
function requestName(req: unknown): string {
  try {
    const t = (req as { type?: unknown } | null | undefined)?.type;
    return typeof t === 'string' ? t : 'unknown';
  } catch {
    return 'unknown';
  }
}

const DROPPED = 'dropped: the device was reset (power-cycled) while this request waited for its turn; it had no effect';

function isU16(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

function optionalBytes(v: unknown): boolean {
  return v === null || v instanceof Uint8Array;
}

/**
 * One emulated Nitro Secure Module (one `/dev/nsm`). Implements {@link Nsm}: the typed methods
 * reject with {@link NsmError}; {@link NsmDevice.request} and {@link NsmDevice.handleRaw} never
 * reject and answer errors as the device does.
 */
export class NsmDevice implements Nsm {
  /** The module_id DescribeNSM reports and documents carry. */
  readonly moduleId: string;
  /** The device clock, in milliseconds since the Unix epoch (documents' timestamp). */
  readonly clock: () => number;
  private readonly bank: PcrBank;
  private readonly bootPcrs: ReadonlyMap<number, Uint8Array>;
  private readonly seed: Uint8Array | null;
  private readonly streams: SeededRandom[] = [];
  private readonly randomSource: RandomSource;
  private readonly attesterRandom: RandomSource;
  private readonly attesterFactory: AttesterFactory;
  private readonly onInternalError: ((event: InternalErrorEvent) => void) | undefined;
  private attester: Promise<Attester> | null = null;
  private pending = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** Counts resets; a request queued before a reset is dropped instead of run after it. */
  private epoch = 0;
  private readonly faults: FaultPlan | null;
  private gone = false;
  /** The encoded DescribeNSM answer, valid while the bank's lock generation is `describedAt`. */
  private described: Uint8Array | null = null;
  private describedAt = -1;

  /**
   * Powers on a device: boot PCR values set, PCRs 0-15 locked, 16-31 unlocked.
   * @throws TypeError for an empty module id or a seed that is not hex; RangeError for a boot
   * PCR outside 0-31 or a value that is not 48 bytes.
   */
  constructor(options: NsmDeviceOptions = {}) {
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError(
        `clock must be a function returning milliseconds since 1970 (e.g. () => Date.parse('2026-01-01T00:00:00Z')), not a ${typeof options.clock}`,
      );
    }
    const mode = options.boot ?? 'enclave';
    if (!BOOT_MODES.includes(mode)) throw new TypeError(`boot must be one of ${BOOT_MODES.join(', ')}, not ${JSON.stringify(mode)}`);
    if (options.instanceId !== undefined && (typeof options.instanceId !== 'string' || options.instanceId === '')) {
      throw new TypeError('instanceId must be a non-empty string');
    }
    if (options.sha384 !== undefined && typeof options.sha384 !== 'function') throw new TypeError('sha384 must be a function (...parts: Uint8Array[]) => Uint8Array');
    this.bank = new PcrBank(options.sha384);
    this.clock = options.clock ?? Date.now;
    this.seed = options.seed === undefined ? null : parseSeed(options.seed);
    this.randomSource = this.stream('get-random');
    this.attesterRandom = this.stream('attestation');
    this.attesterFactory = options.attester ?? defaultAttester;
    if (options.onInternalError !== undefined && typeof options.onInternalError !== 'function') throw new TypeError('onInternalError must be a function');
    this.onInternalError = options.onInternalError;
    // The module-id stream exists even when the id is given, so every device made with the same
    // seed has the same streams and accepts another's exported state.
    const idStream = this.stream('module-id');
    let instanceId = options.instanceId;
    if (options.moduleId === undefined) {
      const bootMs = this.clock();
      if (typeof bootMs !== 'number' || !Number.isFinite(bootMs) || bootMs < 0) {
        throw new TypeError(`clock() returned ${String(bootMs)}; expected milliseconds since 1970`);
      }
      instanceId ??= randomInstanceId(idStream);
      this.moduleId = defaultModuleId(idStream, bootMs, instanceId);
    } else {
      if (typeof options.moduleId !== 'string' || options.moduleId.length === 0) throw new TypeError('moduleId must be a non-empty string');
      this.moduleId = options.moduleId;
      instanceId ??= instanceIdOf(options.moduleId);
    }
    // The image id is drawn only when needed, from its own stream (not part of the device state).
    const seed = this.seed;
    const pcrs = bootModePcrs(mode, () => syntheticImageId(seed), instanceId, options.sha384);
    for (const [i, v] of normalizeBootPcrs(options.pcrs)) pcrs.set(i, v);
    this.bootPcrs = pcrs;
    this.bank.boot(this.bootPcrs);
    this.faults = options.faults === undefined || options.faults.length === 0 ? null : new FaultPlan(options.faults, this.seed, options.onFault);
  }

  private stream(label: string): RandomSource {
    if (this.seed === null) return systemRandom;
    const s = new SeededRandom(this.seed, label);
    this.streams.push(s);
    return s;
  }

  /** True when made with a seed (every random draw is reproducible). */
  get seeded(): boolean {
    return this.seed !== null;
  }

  /**
   * Back to the boot state: boot PCR values, 0-15 locked, seeded streams rewound, attester
   * remade. Like a power cycle, it drops requests still waiting their turn: they are answered
   * `InternalError` and have no effect. One already being signed completes as it was. A device
   * that disappeared (an injected fault) is back, with its faults rewound.
   */
  reset(): void {
    this.epoch++;
    this.gone = false;
    this.faults?.reset();
    this.bank.boot(this.bootPcrs);
    for (const s of this.streams) s.position = 0;
    this.attester = null;
  }

  // ---- the two ways in ----------------------------------------------------------------------

  /** True once an injected fault made the device disappear (until {@link NsmDevice.reset}). */
  get disappeared(): boolean {
    return this.gone;
  }

  /**
   * Executes a typed request. Failures are `{type: 'Error'}` responses; the promise rejects only
   * with {@link NsmDeviceGoneError}, once an injected fault made the device disappear.
   */
  request(req: NsmRequest): Promise<NsmResponse> {
    return this.serialize(
      () => this.run(req),
      () => this.internalError(requestName(req), new Error(DROPPED)),
    );
  }

  /**
   * Executes one raw CBOR request and returns the raw CBOR response. Rejects only with
   * {@link NsmDeviceGoneError}, once an injected fault made the device disappear.
   */
  handleRaw(bytes: Uint8Array): Promise<Uint8Array> {
    return this.serialize(() => this.rawNow(bytes), () => {
      const decoded = decodeRequest(bytes);
      return encodeResponse(this.internalError(decoded.ok ? decoded.request.type : 'unknown', new Error(DROPPED)));
    });
  }

  /**
   * @internal {@link handleRaw} for servers answering many requests (the socket server uses
   * it): the same execution in the same order, but when the device is idle and the request
   * needs no signature the answer is returned as bytes at once instead of as a promise (one
   * promise and one microtask less per request). Rejects as handleRaw does.
   */
  handleRawNow(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (this.pending !== 0) return this.handleRaw(bytes);
    let r: Uint8Array | Promise<Uint8Array>;
    try {
      r = this.rawNow(bytes);
    } catch (e) {
      return this.track(Promise.reject(e));
    }
    return r instanceof Promise ? this.track(r) : r;
  }

  private rawNow(bytes: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (this.gone) throw new NsmDeviceGoneError();
    const decoded = decodeRequest(bytes);
    // Without injected faults the DescribeNSM answer is kept encoded until a lock changes.
    if (decoded.ok && decoded.request.type === 'DescribeNSM' && this.faults === null) return this.describeNsmRaw();
    const r = decoded.ok ? this.run(decoded.request) : error(decoded.error);
    return r instanceof Promise ? r.then(encodeResponse) : encodeResponse(r);
  }

  /** An InternalError answer, its reason recorded and reported to `onInternalError`. */
  private internalError(request: string, reason: unknown): NsmResponse {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    const r = error('InternalError');
    reasons.set(r, err);
    try {
      this.onInternalError?.({ request, reason: err });
    } catch {
      // A listener that throws must not change the device's answer.
    }
    return r;
  }

  /** A request as the device runs it, after any injected fault has had its say. */
  private run(req: NsmRequest): NsmResponse | Promise<NsmResponse> {
    if (this.gone) throw new NsmDeviceGoneError();
    const decision = this.faults?.decide(req.type) ?? null;
    if (decision === null) return this.execute(req);
    const epoch = this.epoch;
    const act = (): NsmResponse | Promise<NsmResponse> => {
      // A reset during the delay drops the request, as it drops every request still waiting.
      if (epoch !== this.epoch) return this.internalError(req.type, new Error(DROPPED));
      if (decision.disappear) {
        this.gone = true;
        throw new NsmDeviceGoneError();
      }
      return decision.error !== null ? error(decision.error) : this.execute(req);
    };
    if (decision.delayMs === 0) return act();
    return new Promise<void>((resolve) => setTimeout(resolve, decision.delayMs)).then(act);
  }

  /**
   * Runs `fn` after everything issued before it; synchronous work runs at once when idle. If the
   * device is reset while the request waits, `dropped` answers it instead.
   */
  private serialize<T>(fn: () => T | Promise<T>, dropped: () => T): Promise<T> {
    if (this.pending === 0) {
      let r: T | Promise<T>;
      try {
        r = fn();
      } catch (e) {
        return this.track(Promise.reject(e));
      }
      return r instanceof Promise ? this.track(r) : Promise.resolve(r);
    }
    const epoch = this.epoch;
    return this.track(this.tail.then(() => (epoch === this.epoch ? fn() : dropped())));
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending++;
    this.tail = p.then(
      () => this.pending--,
      () => this.pending--,
    );
    return p;
  }

  // ---- one handler per request ----------------------------------------------------------------

  private execute(req: NsmRequest): NsmResponse | Promise<NsmResponse> {
    try {
      const handler = HANDLERS[req.type];
      if (!handler) return error('InvalidOperation');
      return handler(this, req as never);
    } catch (e) {
      return this.internalError(requestName(req), e);
    }
  }

  /** @internal */ describePcrNow(index: number): NsmResponse {
    if (!isU16(index)) return error('InvalidOperation');
    if (index >= MAX_PCRS) return error('InvalidIndex');
    return { type: 'DescribePCR', lock: this.bank.isLocked(index), data: this.bank.read(index) };
  }

  /** @internal */ extendPcrNow(index: number, data: Uint8Array): NsmResponse {
    if (!isU16(index) || !(data instanceof Uint8Array)) return error('InvalidOperation');
    if (index >= MAX_PCRS) return error('InvalidIndex');
    if (this.bank.isLocked(index)) return error('ReadOnlyIndex');
    return { type: 'ExtendPCR', data: this.bank.extend(index, data) };
  }

  /** @internal */ lockPcrNow(index: number): NsmResponse {
    if (!isU16(index)) return error('InvalidOperation');
    if (index >= MAX_PCRS) return error('InvalidIndex');
    if (this.bank.isLocked(index)) return error('ReadOnlyIndex');
    this.bank.lock(index);
    return { type: 'LockPCR' };
  }

  /** @internal */ lockPcrsNow(range: number): NsmResponse {
    if (!isU16(range)) return error('InvalidOperation');
    if (range > MAX_PCRS) return error('InvalidIndex');
    for (let i = 0; i < range; i++) this.bank.lock(i);
    return { type: 'LockPCRs' };
  }

  /** @internal */ describeNsmNow(): NsmResponse {
    return { type: 'DescribeNSM', ...this.description() };
  }

  /** The encoded DescribeNSM answer; it changes only when a lock does, so it is kept until then. */
  private describeNsmRaw(): Uint8Array {
    const generation = this.bank.lockGeneration;
    if (this.described === null || this.describedAt !== generation) {
      this.described = encodeResponse(this.describeNsmNow());
      this.describedAt = generation;
    }
    return this.described.slice();
  }

  /** @internal */ getRandomNow(): NsmResponse {
    return { type: 'GetRandom', random: this.randomSource.bytes(RANDOM_SIZE) };
  }

  /** @internal */ attestationNow(req: Extract<NsmRequest, { type: 'Attestation' }>): NsmResponse | Promise<NsmResponse> {
    const fields = [req.userData, req.nonce, req.publicKey];
    if (!fields.every(optionalBytes)) return error('InvalidOperation');
    if (fields.some((f) => f !== null && f.length > ATTESTATION_FIELD_MAX)) return error('InputTooLarge');
    // Everything the document holds is captured now, in request order.
    const input = {
      moduleId: this.moduleId,
      pcrs: this.bank.lockedValues(),
      userData: req.userData && req.userData.slice(),
      nonce: req.nonce && req.nonce.slice(),
      publicKey: req.publicKey && req.publicKey.slice(),
    };
    this.attester ??= Promise.resolve().then(() =>
      this.attesterFactory({ clock: this.clock, random: this.attesterRandom }),
    );
    const attester = this.attester;
    return attester
      .then((a) => a.attest(input))
      .then(
        (document): NsmResponse => ({ type: 'Attestation', document }),
        (e: unknown) => {
          if (this.attester === attester) this.attester = null;
          return this.internalError('Attestation', e);
        },
      );
  }

  /** What DescribeNSM reports. */
  description(): NsmDescription {
    return {
      versionMajor: NSM_VERSION.major,
      versionMinor: NSM_VERSION.minor,
      versionPatch: NSM_VERSION.patch,
      moduleId: this.moduleId,
      maxPcrs: MAX_PCRS,
      lockedPcrs: this.bank.lockedIndices(),
      digest: 'SHA384',
    };
  }

  // ---- typed API: one method per request; errors become NsmError -----------------------------

  private async expect<T extends NsmResponse['type']>(req: NsmRequest, type: T): Promise<Extract<NsmResponse, { type: T }>> {
    const r = await this.request(req);
    if (r.type === 'Error') throw new NsmError(r.code, reasons.has(r) ? { cause: reasons.get(r) } : undefined);
    if (r.type !== type) throw new NsmError('InvalidResponse');
    return r as Extract<NsmResponse, { type: T }>;
  }

  /** DescribePCR: the value of PCR `index` (0-31) and whether it is locked. */
  async describePcr(index: number): Promise<PcrDescription> {
    const { lock, data } = await this.expect({ type: 'DescribePCR', index }, 'DescribePCR');
    return { lock, data };
  }

  /** ExtendPCR: PCR `index` becomes SHA-384(old value || data); resolves to the new value. */
  async extendPcr(index: number, data: Uint8Array): Promise<Uint8Array> {
    return (await this.expect({ type: 'ExtendPCR', index, data }, 'ExtendPCR')).data;
  }

  /** LockPCR: makes PCR `index` read-only until {@link NsmDevice.reset}. */
  async lockPcr(index: number): Promise<void> {
    await this.expect({ type: 'LockPCR', index }, 'LockPCR');
  }

  /** LockPCRs: locks PCRs 0 to `range` - 1 (`range` up to 32; some may be locked already). */
  async lockPcrs(range: number): Promise<void> {
    await this.expect({ type: 'LockPCRs', range }, 'LockPCRs');
  }

  /** DescribeNSM: version 1.0.0, module id, 32 PCRs, the locked ones ascending, SHA384. */
  async describeNsm(): Promise<NsmDescription> {
    const { type: _type, ...description } = await this.expect({ type: 'DescribeNSM' }, 'DescribeNSM');
    return description;
  }

  /** GetRandom: 256 bytes (from the seed when the device has one). */
  async getRandom(): Promise<Uint8Array> {
    return (await this.expect({ type: 'GetRandom' }, 'GetRandom')).random;
  }

  /**
   * Attestation: a COSE_Sign1 document (bytes) over module_id, the locked PCRs and the given
   * user data, nonce and public key (each up to 1024 bytes), signed by the device's attester.
   */
  async attestation(options: AttestationOptions = {}): Promise<Uint8Array> {
    const req: NsmRequest = {
      type: 'Attestation',
      userData: options.userData ?? null,
      nonce: options.nonce ?? null,
      publicKey: options.publicKey ?? null,
    };
    return (await this.expect(req, 'Attestation')).document;
  }

  // ---- state for snapshots ----------------------------------------------------------------------

  /**
   * Options that rebuild this device's boot state (add a clock and an attester): its module id,
   * seed and every PCR value set at boot (with `boot: 'bare'`, as they are complete). A device
   * made from them accepts this one's {@link exportState}.
   */
  bootOptions(): { boot: 'bare'; moduleId: string; seed?: Uint8Array; pcrs: Map<number, Uint8Array> } {
    const pcrs = new Map([...this.bootPcrs].map(([i, v]) => [i, v.slice()] as [number, Uint8Array]));
    const base = { boot: 'bare' as const, moduleId: this.moduleId, pcrs };
    return this.seed === null ? base : { ...base, seed: this.seed.slice() };
  }

  /** The mutable state: PCR values and locks, and the positions of the seeded streams. */
  exportState(): { pcrs: Uint8Array; locks: boolean[]; randomPositions: number[] } {
    const { values, locks } = this.bank.export();
    return { pcrs: values, locks, randomPositions: this.streams.map((s) => s.position) };
  }

  /** Restores what {@link exportState} returned (from a device made with the same options). */
  importState(state: { pcrs: Uint8Array; locks: readonly boolean[]; randomPositions: readonly number[] }): void {
    if (state.randomPositions.length !== this.streams.length) throw new RangeError('random stream count differs');
    this.bank.import({ values: state.pcrs, locks: state.locks });
    this.streams.forEach((s, i) => (s.position = state.randomPositions[i]!));
  }
}

type Handler<R extends NsmRequest> = (d: NsmDevice, r: R) => NsmResponse | Promise<NsmResponse>;
type HandlerTable = { [K in NsmRequest['type']]: Handler<Extract<NsmRequest, { type: K }>> };

/** One handler per request, chosen by name. */
const HANDLERS: HandlerTable = {
  DescribePCR: (d, r) => d.describePcrNow(r.index),
  ExtendPCR: (d, r) => d.extendPcrNow(r.index, r.data),
  LockPCR: (d, r) => d.lockPcrNow(r.index),
  LockPCRs: (d, r) => d.lockPcrsNow(r.range),
  DescribeNSM: (d) => d.describeNsmNow(),
  GetRandom: (d) => d.getRandomNow(),
  Attestation: (d, r) => d.attestationNow(r),
};

function normalizeBootPcrs(
  pcrs: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>> | undefined,
): ReadonlyMap<number, Uint8Array> {
  const entries: Array<[number, Uint8Array]> =
    pcrs === undefined ? [] : pcrs instanceof Map ? [...pcrs] : Object.entries(pcrs).map(([k, v]) => [Number(k), v]);
  const out = new Map<number, Uint8Array>();
  for (const [i, v] of entries) {
    if (!Number.isInteger(i) || i < 0 || i >= MAX_PCRS) throw new RangeError(`boot PCR index ${i} is not in [0, ${MAX_PCRS})`);
    if (!(v instanceof Uint8Array) || v.length !== PCR_LENGTH) {
      throw new RangeError(`boot value of PCR ${i} must be ${PCR_LENGTH} bytes`);
    }
    out.set(i, v.slice());
  }
  return out;
}

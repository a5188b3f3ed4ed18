/**
 * The serialized form of a virtio-nsm device, for VMM snapshots and live migration.
 *
 * A snapshot is one CBOR map with text keys, versioned by `"version"` (currently 1) under a
 * fixed `"format"` name. It holds everything the device needs to carry on: the virtio side
 * (status, negotiated features, queue layout and positions, options, a recorded transport fault)
 * and the NSM side (how it booted: module id, seed and boot PCR values;
 * and its state: PCR values, locks, seeded stream positions), plus the caller's opaque name for
 * the CA that signs documents. Guest memory, the clock and the attester itself are not data:
 * the VMM hands them back on restore. Decoding is strict: an unknown version or a missing or
 * mistyped field is a {@link VirtioSnapshotError}.
 * @module
 */
import { CborWriter } from '../wire/cbor-encode.js';
import { type CborMap, type CborValue, cborMapGet, decodeCbor, isCborNull } from '../wire/cbor-decode.js';
import { MAX_PCRS, PCR_LENGTH } from '../device/limits.js';
import { type TransportErrorKind, VirtioSnapshotError } from './errors.js';

export const SNAPSHOT_FORMAT = 'nsm-emulator virtio-nsm';
export const SNAPSHOT_VERSION = 1;

export interface NsmSnapshot {
  /** The module id the device reports. */
  readonly moduleId: string;
  readonly seed: Uint8Array | null;
  /** Power-on PCR values other than zero: index -> 48 bytes. */
  readonly bootPcrs: ReadonlyMap<number, Uint8Array>;
  /** All 32 PCRs back to back. */
  readonly pcrs: Uint8Array;
  readonly locks: readonly boolean[];
  readonly randomPositions: readonly number[];
}

export interface QueueSnapshot {
  readonly size: number;
  readonly descTable: bigint;
  readonly availRing: bigint;
  readonly usedRing: bigint;
  readonly lastAvail: number;
  readonly usedIdx: number;
  readonly signalledUsed: number | null;
}

export interface DeviceSnapshot {
  readonly status: number;
  readonly driverFeatures: bigint;
  readonly queueMaxSize: number;
  readonly acceptSingleChain: boolean;
  readonly caReference: string | null;
  /** Set once the device was activated (the queue the driver programmed). */
  readonly queue: QueueSnapshot | null;
  readonly transportError: { readonly kind: TransportErrorKind; readonly message: string } | null;
  readonly nsm: NsmSnapshot;
}

export function encodeSnapshot(s: DeviceSnapshot): Uint8Array {
  const w = new CborWriter(2048);
  w.mapHeader(10);
  w.text('format').text(SNAPSHOT_FORMAT);
  w.text('version').uint(SNAPSHOT_VERSION);
  w.text('status').uint(s.status);
  w.text('driverFeatures').uint(s.driverFeatures);
  w.text('queueMaxSize').uint(s.queueMaxSize);
  w.text('acceptSingleChain').bool(s.acceptSingleChain);
  w.text('caReference');
  if (s.caReference === null) w.null();
  else w.text(s.caReference);
  w.text('queue');
  if (s.queue === null) w.null();
  else {
    const q = s.queue;
    w.mapHeader(7);
    w.text('size').uint(q.size);
    w.text('descTable').uint(q.descTable);
    w.text('availRing').uint(q.availRing);
    w.text('usedRing').uint(q.usedRing);
    w.text('lastAvail').uint(q.lastAvail);
    w.text('usedIdx').uint(q.usedIdx);
    w.text('signalledUsed');
    if (q.signalledUsed === null) w.null();
    else w.uint(q.signalledUsed);
  }
  w.text('transportError');
  if (s.transportError === null) w.null();
  else w.arrayHeader(2).text(s.transportError.kind).text(s.transportError.message);
  const n = s.nsm;
  w.text('nsm').mapHeader(6);
  w.text('moduleId').text(n.moduleId);
  w.text('seed').bytesOrNull(n.seed);
  const boot = [...n.bootPcrs].sort((a, b) => a[0] - b[0]);
  w.text('bootPcrs').mapHeader(boot.length);
  for (const [i, v] of boot) w.uint(i).bytes(v);
  w.text('pcrs').bytes(n.pcrs);
  w.text('locks').arrayHeader(n.locks.length);
  for (const l of n.locks) w.bool(l);
  w.text('randomPositions').arrayHeader(n.randomPositions.length);
  for (const p of n.randomPositions) w.uint(p);
  return w.finish();
}

// ---- strict decoding ------------------------------------------------------------------------------

function bad(what: string): never {
  throw new VirtioSnapshotError(`not a virtio-nsm snapshot: ${what}`);
}

function field(m: CborMap, key: string): CborValue {
  return cborMapGet(m, key) ?? bad(`missing "${key}"`);
}

function map(v: CborValue, key: string): CborMap {
  return v.type === 'map' ? v : bad(`"${key}" must be a map`);
}

function uint(m: CborMap, key: string, max: number): number {
  const v = field(m, key);
  if (v.type !== 'uint' || typeof v.value !== 'number' || v.value > max) bad(`"${key}" must be an integer up to ${max}`);
  return v.value;
}

function bigUint(m: CborMap, key: string): bigint {
  const v = field(m, key);
  return v.type === 'uint' ? BigInt(v.value) : bad(`"${key}" must be an unsigned integer`);
}

function bool(m: CborMap, key: string): boolean {
  const v = field(m, key);
  if (v.type !== 'simple' || (v.value !== 20 && v.value !== 21)) bad(`"${key}" must be a boolean`);
  return v.value === 21;
}

function text(m: CborMap, key: string): string {
  const v = field(m, key);
  return v.type === 'text' ? v.value : bad(`"${key}" must be text`);
}

function textOrNull(m: CborMap, key: string): string | null {
  const v = field(m, key);
  return isCborNull(v) ? null : v.type === 'text' ? v.value : bad(`"${key}" must be text or null`);
}

function bytesOrNull(m: CborMap, key: string): Uint8Array | null {
  const v = field(m, key);
  return isCborNull(v) ? null : v.type === 'bytes' ? v.value.slice() : bad(`"${key}" must be bytes or null`);
}

function array(m: CborMap, key: string): CborValue[] {
  const v = field(m, key);
  return v.type === 'array' ? v.items : bad(`"${key}" must be an array`);
}

const KINDS: readonly TransportErrorKind[] = [
  'queue-config', 'ring-address', 'avail-index', 'descriptor-index', 'buffer-address', 'zero-length-descriptor',
  'descriptor-loop', 'indirect-descriptor', 'descriptor-order', 'zero-length-request', 'request-direction',
  'missing-response', 'response-direction', 'response-size',
];

export function decodeSnapshot(bytes: Uint8Array): DeviceSnapshot {
  let root: CborValue;
  try {
    root = decodeCbor(bytes);
  } catch (e) {
    return bad(`CBOR: ${(e as Error).message}`);
  }
  const m = map(root, 'snapshot');
  if (text(m, 'format') !== SNAPSHOT_FORMAT) bad('unknown "format"');
  const version = uint(m, 'version', 0xffff);
  if (version !== SNAPSHOT_VERSION) bad(`version ${version} (this library reads version ${SNAPSHOT_VERSION})`);

  const qv = field(m, 'queue');
  let queue: QueueSnapshot | null = null;
  if (!isCborNull(qv)) {
    const q = map(qv, 'queue');
    const su = field(q, 'signalledUsed');
    queue = {
      size: uint(q, 'size', 32768),
      descTable: bigUint(q, 'descTable'),
      availRing: bigUint(q, 'availRing'),
      usedRing: bigUint(q, 'usedRing'),
      lastAvail: uint(q, 'lastAvail', 0xffff),
      usedIdx: uint(q, 'usedIdx', 0xffff),
      signalledUsed: isCborNull(su) ? null : uint(q, 'signalledUsed', 0xffff),
    };
  }

  const ev = field(m, 'transportError');
  let transportError: DeviceSnapshot['transportError'] = null;
  if (!isCborNull(ev)) {
    const [k, msg] = ev.type === 'array' && ev.items.length === 2 ? ev.items : bad('"transportError" must be [kind, message]');
    if (k?.type !== 'text' || !KINDS.includes(k.value as TransportErrorKind) || msg?.type !== 'text') bad('"transportError" must be [kind, message]');
    transportError = { kind: k.value as TransportErrorKind, message: msg.value };
  }

  const n = map(field(m, 'nsm'), 'nsm');
  const bootPcrs = new Map<number, Uint8Array>();
  for (const [k, v] of map(field(n, 'bootPcrs'), 'bootPcrs').entries) {
    if (k.type !== 'uint' || typeof k.value !== 'number' || k.value >= MAX_PCRS || v.type !== 'bytes' || v.value.length !== PCR_LENGTH) {
      bad('"bootPcrs" must map PCR indices to 48-byte values');
    }
    bootPcrs.set(k.value, v.value.slice());
  }
  const pcrs = field(n, 'pcrs');
  if (pcrs.type !== 'bytes' || pcrs.value.length !== MAX_PCRS * PCR_LENGTH) bad(`"pcrs" must be ${MAX_PCRS * PCR_LENGTH} bytes`);
  const locks = array(n, 'locks').map((v) => (v.type === 'simple' && (v.value === 20 || v.value === 21) ? v.value === 21 : bad('"locks" must be booleans')));
  if (locks.length !== MAX_PCRS) bad(`"locks" must have ${MAX_PCRS} entries`);
  const randomPositions = array(n, 'randomPositions').map((v) =>
    v.type === 'uint' && typeof v.value === 'number' ? v.value : bad('"randomPositions" must be integers'),
  );

  return {
    status: uint(m, 'status', 0xff),
    driverFeatures: bigUint(m, 'driverFeatures'),
    queueMaxSize: uint(m, 'queueMaxSize', 32768),
    acceptSingleChain: bool(m, 'acceptSingleChain'),
    caReference: textOrNull(m, 'caReference'),
    queue,
    transportError,
    nsm: {
      moduleId: text(n, 'moduleId'),
      seed: bytesOrNull(n, 'seed'),
      bootPcrs,
      pcrs: pcrs.value.slice(),
      locks,
      randomPositions,
    },
  };
}

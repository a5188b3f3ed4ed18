/**
 * Making a document straight from chosen values (PCRs, module_id, timestamp, inputs, CA),
 * without a device or requests: what tests of KMS key policies and verifiers need. PCRs not
 * chosen read as on a default-booted device: a production enclave's (see enclave-boot.ts).
 * @module
 */
import { ATTESTATION_FIELD_MAX, defaultModuleId, instanceIdOf, randomInstanceId, parseSeed } from '../device/boot.js';
import { BOOT_MODES, type BootMode, bootModePcrs, syntheticImageId } from '../device/enclave-boot.js';
import { BOOT_LOCKED_PCRS, MAX_PCRS, PCR_LENGTH } from '../device/limits.js';
import { type RandomSource, SeededRandom, systemRandom } from '../device/random.js';
import { caAttester } from './ca-attester.js';
import { committedTestCa } from './default-attester.js';
import type { PayloadMapForm, PcrEntry } from './document.js';
import type { P384BackendChoice } from './p384.js';
import type { TestCa } from './test-ca.js';

export interface DocumentValues {
  /** Signing CA (default: the committed test CA). */
  readonly ca?: TestCa;
  /** Default: `i-<17 hex>-enc<16 hex>`, random or from `seed`. */
  readonly moduleId?: string;
  /** Milliseconds since the epoch (default now). */
  readonly timestamp?: number;
  /**
   * PCR values (index -> 48 bytes). With the default `pcrSet: 'device'` they override what the
   * enclave booted with; with `pcrSet: 'given'` they are the document's only PCRs.
   */
  readonly pcrs?: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>> | readonly PcrEntry[];
  /**
   * Which PCRs the document lists. `device` (the default): what a device booted with `boot` and
   * these `pcrs` attests, as every real document does: PCRs 0-15 always, in order, plus any of
   * 16-31 given. `given`: exactly the PCRs in `pcrs` and nothing else (an unrealistic document,
   * for verifier tests).
   */
  readonly pcrSet?: 'device' | 'given';
  /**
   * How the enclave was started, for PCRs 0-15 not given (as NsmDevice's `boot`; default
   * `enclave`): `enclave` gives PCR0-2 of the synthetic image (from `seed` when seeded) and PCR4
   * of the parent instance id in module_id, others zero, like a production enclave; `debug`
   * zeroes PCR0-2; `bare` zeroes everything.
   */
  readonly boot?: BootMode;
  readonly userData?: Uint8Array | null;
  readonly nonce?: Uint8Array | null;
  readonly publicKey?: Uint8Array | null;
  /** Default `indefinite` (AWS since 2025). */
  readonly payloadMap?: PayloadMapForm;
  /** Makes keys, serials, ids and signatures reproducible (bytes or hex). */
  readonly seed?: Uint8Array | string;
  readonly crypto?: P384BackendChoice;
}

function givenPcrs(pcrs: DocumentValues['pcrs']): PcrEntry[] {
  let list: PcrEntry[];
  if (pcrs === undefined) {
    list = [];
  } else if (pcrs instanceof Map) {
    list = [...pcrs].map(([index, data]) => ({ index, data }));
  } else if (Array.isArray(pcrs)) {
    list = [...(pcrs as readonly PcrEntry[])];
  } else {
    list = Object.entries(pcrs).map(([k, data]) => ({ index: Number(k), data: data as Uint8Array }));
  }
  const seen = new Set<number>();
  for (const { index, data } of list) {
    if (!Number.isInteger(index) || index < 0 || index >= MAX_PCRS) throw new RangeError(`PCR index ${index} is not in 0..${MAX_PCRS - 1}`);
    if (seen.has(index)) throw new RangeError(`PCR ${index} given twice`);
    seen.add(index);
    if (!(data instanceof Uint8Array) || data.length !== PCR_LENGTH) throw new RangeError(`PCR ${index} must be ${PCR_LENGTH} bytes`);
  }
  return list;
}

/** The document's PCRs, ascending. */
function pcrList(values: DocumentValues, moduleId: string, seed: Uint8Array | null): PcrEntry[] {
  const set = values.pcrSet ?? 'device';
  if (set !== 'device' && set !== 'given') throw new TypeError(`pcrSet must be 'device' or 'given', not ${JSON.stringify(set)}`);
  const given = givenPcrs(values.pcrs);
  if (set === 'given') {
    if (values.boot !== undefined) throw new TypeError("boot has no effect with pcrSet 'given' (the document lists only the PCRs in pcrs); drop one of them");
    if (given.length === 0) throw new RangeError("pcrSet 'given' needs at least one PCR in pcrs: a document always lists PCRs");
    return given.sort((a, b) => a.index - b.index);
  }
  const mode = values.boot ?? 'enclave';
  if (!BOOT_MODES.includes(mode)) throw new TypeError(`boot must be one of ${BOOT_MODES.join(', ')}, not ${JSON.stringify(mode)}`);
  // What the device's bank holds after boot (the given values written before PCRs 0-15 lock).
  const bank = bootModePcrs(mode, () => syntheticImageId(seed), instanceIdOf(moduleId));
  for (const { index, data } of given) bank.set(index, data);
  const indices = new Set([...Array.from({ length: BOOT_LOCKED_PCRS }, (_, i) => i), ...bank.keys()]);
  return [...indices].sort((a, b) => a - b).map((index) => ({ index, data: bank.get(index) ?? new Uint8Array(PCR_LENGTH) }));
}

function field(name: string, v: Uint8Array | null | undefined): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array or null`);
  if (v.length > ATTESTATION_FIELD_MAX) throw new RangeError(`${name} is ${v.length} bytes; the device accepts at most ${ATTESTATION_FIELD_MAX}`);
  return v;
}

/**
 * Signs one attestation document with the given values; everything not given is what a
 * default-booted NsmDevice with the same `seed`, `moduleId` and clock would attest.
 */
export async function makeAttestationDocument(values: DocumentValues = {}): Promise<Uint8Array> {
  const seed = values.seed === undefined ? null : parseSeed(values.seed);
  const random: RandomSource = seed ? new SeededRandom(seed, 'attestation') : systemRandom;
  const timestamp = values.timestamp ?? Date.now();
  if (!Number.isSafeInteger(timestamp) || timestamp <= 0) throw new RangeError('timestamp must be a positive integer of milliseconds');
  const idRandom = seed ? new SeededRandom(seed, 'module-id') : systemRandom;
  const moduleId = values.moduleId ?? defaultModuleId(idRandom, timestamp, randomInstanceId(idRandom));
  if (typeof moduleId !== 'string' || moduleId === '') throw new TypeError('moduleId must be a non-empty string');
  const pcrs = pcrList(values, moduleId, seed);
  const options = { ...(values.payloadMap ? { payloadMap: values.payloadMap } : {}), ...(values.crypto ? { crypto: values.crypto } : {}) };
  const attester = await caAttester(values.ca ?? committedTestCa(), options)({ clock: () => timestamp, random });
  return attester.attest({
    moduleId,
    pcrs: pcrs.map((p) => ({ index: p.index, locked: true, data: p.data })),
    userData: field('userData', values.userData),
    nonce: field('nonce', values.nonce),
    publicKey: field('publicKey', values.publicKey),
  });
}

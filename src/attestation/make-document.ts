/**
 * Making a document straight from chosen values (PCRs, module_id, timestamp, inputs, CA),
 * without a device or requests: what tests of KMS key policies and verifiers need.
 * @module
 */
import { ATTESTATION_FIELD_MAX, defaultModuleId, randomInstanceId, parseSeed } from '../device/boot.js';
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
  /** PCRs in the document (default: 0-15, all zero, like a fresh enclave without an image). */
  readonly pcrs?: ReadonlyMap<number, Uint8Array> | Readonly<Record<number, Uint8Array>> | readonly PcrEntry[];
  readonly userData?: Uint8Array | null;
  readonly nonce?: Uint8Array | null;
  readonly publicKey?: Uint8Array | null;
  /** Default `indefinite` (AWS since 2025). */
  readonly payloadMap?: PayloadMapForm;
  /** Makes keys, serials, ids and signatures reproducible (bytes or hex). */
  readonly seed?: Uint8Array | string;
  readonly crypto?: P384BackendChoice;
}

function pcrList(pcrs: DocumentValues['pcrs']): PcrEntry[] {
  let list: PcrEntry[];
  if (pcrs === undefined) {
    list = Array.from({ length: BOOT_LOCKED_PCRS }, (_, index) => ({ index, data: new Uint8Array(PCR_LENGTH) }));
  } else if (pcrs instanceof Map) {
    list = [...pcrs].map(([index, data]) => ({ index, data }));
  } else if (Array.isArray(pcrs)) {
    list = [...(pcrs as readonly PcrEntry[])];
  } else {
    list = Object.entries(pcrs).map(([k, data]) => ({ index: Number(k), data: data as Uint8Array }));
  }
  if (list.length === 0) throw new RangeError('a document needs at least one PCR');
  const seen = new Set<number>();
  for (const { index, data } of list) {
    if (!Number.isInteger(index) || index < 0 || index >= MAX_PCRS) throw new RangeError(`PCR index ${index} is not in 0..${MAX_PCRS - 1}`);
    if (seen.has(index)) throw new RangeError(`PCR ${index} given twice`);
    seen.add(index);
    if (!(data instanceof Uint8Array) || data.length !== PCR_LENGTH) throw new RangeError(`PCR ${index} must be ${PCR_LENGTH} bytes`);
  }
  return list.sort((a, b) => a.index - b.index);
}

function field(name: string, v: Uint8Array | null | undefined): Uint8Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array or null`);
  if (v.length > ATTESTATION_FIELD_MAX) throw new RangeError(`${name} is ${v.length} bytes; the device accepts at most ${ATTESTATION_FIELD_MAX}`);
  return v;
}

/** Signs one attestation document with exactly the given values. */
export async function makeAttestationDocument(values: DocumentValues = {}): Promise<Uint8Array> {
  const seed = values.seed === undefined ? null : parseSeed(values.seed);
  const random: RandomSource = seed ? new SeededRandom(seed, 'attestation') : systemRandom;
  const timestamp = values.timestamp ?? Date.now();
  if (!Number.isSafeInteger(timestamp) || timestamp <= 0) throw new RangeError('timestamp must be a positive integer of milliseconds');
  const idRandom = seed ? new SeededRandom(seed, 'module-id') : systemRandom;
  const moduleId = values.moduleId ?? defaultModuleId(idRandom, timestamp, randomInstanceId(idRandom));
  if (typeof moduleId !== 'string' || moduleId === '') throw new TypeError('moduleId must be a non-empty string');
  const pcrs = pcrList(values.pcrs);
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

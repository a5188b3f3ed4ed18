/**
 * The human-readable JSON form of NSM messages used by `rpc --json` and `serve --log`.
 *
 * It is serde's externally tagged JSON shape of nsm-api's types, with byte strings written as
 * lowercase hex: `"DescribeNSM"`, `{"DescribePCR":{"index":0}}`,
 * `{"ExtendPCR":{"index":16,"data":"010203"}}`, `{"Error":"InvalidIndex"}`. The conversion is
 * generic (any CBOR shape maps to JSON and back), so malformed requests can be written too;
 * on the way in, strings under the keys `data`, `user_data`, `nonce` and `public_key` are hex
 * and become byte strings, every other string stays text.
 * @module
 */
import { CborWriter } from '../wire/cbor-encode.js';
import { type CborValue, decodeCbor } from '../wire/cbor-decode.js';
import { UsageError } from './io.js';
import { parseHex, toHex } from './parse.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const BYTE_KEYS = new Set(['data', 'user_data', 'nonce', 'public_key', 'document', 'random']);

function cborToJson(v: CborValue): Json {
  switch (v.type) {
    case 'uint':
    case 'nint':
      return typeof v.value === 'bigint' ? v.value.toString() : v.value;
    case 'bytes':
      return toHex(v.value);
    case 'text':
      return v.value;
    case 'array':
      return v.items.map(cborToJson);
    case 'map': {
      const o: { [key: string]: Json } = {};
      for (const [k, val] of v.entries) {
        const key = k.type === 'text' ? k.value : JSON.stringify(cborToJson(k));
        o[key] = cborToJson(val);
      }
      return o;
    }
    case 'tag':
      return { [`tag(${v.tag})`]: cborToJson(v.value) };
    case 'simple':
      return v.value === 20 ? false : v.value === 21 ? true : null;
    case 'float':
      return v.value;
  }
}

/** Renders one raw message (request or response) as JSON; undecodable bytes as `{"raw": hex}`. */
export function messageToJson(bytes: Uint8Array): Json {
  try {
    return cborToJson(decodeCbor(bytes));
  } catch {
    return { raw: toHex(bytes) };
  }
}

export const requestToJson = messageToJson;
export const responseToJson = messageToJson;

function writeJson(w: CborWriter, v: Json, key: string | null): void {
  if (v === null) w.null();
  else if (typeof v === 'boolean') w.bool(v);
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new UsageError(`number ${v}: only integers can be sent`);
    w.int(v);
  } else if (typeof v === 'string') {
    if (key !== null && BYTE_KEYS.has(key)) w.bytes(parseHex(`"${key}"`, v));
    else w.text(v);
  } else if (Array.isArray(v)) {
    w.arrayHeader(v.length);
    for (const x of v) writeJson(w, x, null);
  } else {
    const entries = Object.entries(v);
    w.mapHeader(entries.length);
    for (const [k, x] of entries) {
      w.text(k);
      writeJson(w, x, k);
    }
  }
}

/** Parses one JSON line into raw CBOR request bytes. Throws UsageError with the reason. */
export function jsonToRequest(line: string): Uint8Array {
  let v: Json;
  try {
    v = JSON.parse(line) as Json;
  } catch (e) {
    throw new UsageError(`not JSON (${(e as Error).message})`);
  }
  const w = new CborWriter(128);
  writeJson(w, v, null);
  return w.finish();
}

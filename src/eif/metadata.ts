/**
 * The metadata section (version 4): compact JSON of AWS's `EifIdentityInfo`. It is never
 * measured; describe-eif reports it. Struct fields keep their declaration order; the free-form
 * `DockerInfo` and `CustomMetadata` values have their object keys sorted, as serde_json does.
 * @module
 */
import { EifBuildError, EifFormatError } from './errors.js';
import { type JsonValue, toCompactJson } from './json-text.js';

export interface EifBuildMetadata {
  readonly buildTime: string;
  readonly buildTool: string;
  readonly buildToolVersion: string;
  readonly operatingSystem: string;
  readonly kernelVersion: string;
}

export interface EifIdentity {
  readonly imageName: string;
  readonly imageVersion: string;
  readonly buildMetadata: EifBuildMetadata;
  /** `docker image inspect` output for nitro-cli builds; null otherwise. */
  readonly dockerInfo: JsonValue;
  /** The user's --metadata JSON, or null. */
  readonly customMetadata: JsonValue;
}

/** The metadata section bytes for `info`. */
export function encodeMetadata(info: EifIdentity): Uint8Array {
  const m = new Map<string, JsonValue>([
    ['ImageName', info.imageName],
    ['ImageVersion', info.imageVersion],
    [
      'BuildMetadata',
      new Map<string, JsonValue>([
        ['BuildTime', info.buildMetadata.buildTime],
        ['BuildTool', info.buildMetadata.buildTool],
        ['BuildToolVersion', info.buildMetadata.buildToolVersion],
        ['OperatingSystem', info.buildMetadata.operatingSystem],
        ['KernelVersion', info.buildMetadata.kernelVersion],
      ]),
    ],
    ['DockerInfo', info.dockerInfo],
    ['CustomMetadata', info.customMetadata],
  ]);
  return new TextEncoder().encode(toCompactJson(m));
}

/** Parses user JSON text for CustomMetadata. Throws {@link EifBuildError} `BAD_METADATA`. */
export function parseCustomMetadata(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    throw new EifBuildError('BAD_METADATA', `custom metadata is not JSON: ${(e as Error).message}`);
  }
}

function field(o: Record<string, unknown>, key: string, where: string, offset: number): string {
  const v = o[key];
  if (typeof v !== 'string') throw new EifFormatError('BAD_METADATA', offset, `metadata ${where}${key} is ${v === undefined ? 'missing' : 'not a string'}`);
  return v;
}

/**
 * Decodes a metadata section as nitro-cli does (every field required). `offset` is the
 * section's data offset, for errors. Throws {@link EifFormatError} `BAD_METADATA`.
 */
export function decodeMetadata(bytes: Uint8Array, offset: number): EifIdentity {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new EifFormatError('BAD_METADATA', offset, `metadata section is not UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EifFormatError('BAD_METADATA', offset, 'metadata section is not a JSON object');
  const o = v as Record<string, unknown>;
  const b = o.BuildMetadata;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new EifFormatError('BAD_METADATA', offset, 'metadata BuildMetadata is missing or not an object');
  const bm = b as Record<string, unknown>;
  for (const k of ['DockerInfo', 'CustomMetadata']) {
    if (!(k in o)) throw new EifFormatError('BAD_METADATA', offset, `metadata ${k} is missing`);
  }
  return {
    imageName: field(o, 'ImageName', '', offset),
    imageVersion: field(o, 'ImageVersion', '', offset),
    buildMetadata: {
      buildTime: field(bm, 'BuildTime', 'BuildMetadata.', offset),
      buildTool: field(bm, 'BuildTool', 'BuildMetadata.', offset),
      buildToolVersion: field(bm, 'BuildToolVersion', 'BuildMetadata.', offset),
      operatingSystem: field(bm, 'OperatingSystem', 'BuildMetadata.', offset),
      kernelVersion: field(bm, 'KernelVersion', 'BuildMetadata.', offset),
    },
    dockerInfo: o.DockerInfo as JsonValue,
    customMetadata: o.CustomMetadata as JsonValue,
  };
}

/**
 * The 548-byte EIF header: decoding (with the checks that need only the header) and encoding.
 * @module
 */
import { EifFormatError } from './errors.js';
import {
  EIF_CURRENT_VERSION,
  EIF_FLAG_ARM64,
  EIF_HEADER_SIZE,
  EIF_MAGIC,
  EIF_MAX_SECTIONS,
  EIF_MIN_VERSION,
  HEADER_OFFSETS as H,
  type EifHeader,
} from './format.js';

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new EifFormatError('SECTION_BEYOND_FILE', at, `${what} is ${v}, larger than any file`);
  return Number(v);
}

/** Decodes and checks a header. `bytes` must be the first 548 bytes of the image. */
export function decodeHeader(bytes: Uint8Array): EifHeader {
  if (bytes.length < EIF_HEADER_SIZE) {
    throw new EifFormatError('TRUNCATED_HEADER', bytes.length, `file ends after ${bytes.length} bytes, inside the ${EIF_HEADER_SIZE}-byte EIF header`);
  }
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== EIF_MAGIC[i]) {
      const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new EifFormatError('BAD_MAGIC', 0, `not an EIF: magic is ${got}, expected 2e 65 69 66 (".eif")`);
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, EIF_HEADER_SIZE);
  const version = view.getUint16(H.version);
  if (version < EIF_MIN_VERSION || version > EIF_CURRENT_VERSION) {
    throw new EifFormatError('UNSUPPORTED_VERSION', H.version, `EIF version ${version} is not supported (expected ${EIF_MIN_VERSION} to ${EIF_CURRENT_VERSION})`);
  }
  const flags = view.getUint16(H.flags);
  if ((flags & ~EIF_FLAG_ARM64) !== 0) {
    throw new EifFormatError('RESERVED_FLAGS', H.flags, `header flags 0x${flags.toString(16).padStart(4, '0')} set reserved bits (only bit 0, aarch64, is defined)`);
  }
  const numSections = view.getUint16(H.numSections);
  if (numSections > EIF_MAX_SECTIONS) {
    throw new EifFormatError('TOO_MANY_SECTIONS', H.numSections, `num_sections is ${numSections}, more than the ${EIF_MAX_SECTIONS} the header has room for`);
  }
  const sectionOffsets: number[] = [];
  const sectionSizes: number[] = [];
  for (let i = 0; i < numSections; i++) {
    sectionOffsets.push(u64(view, H.sectionOffsets + 8 * i, `section_offsets[${i}]`));
    sectionSizes.push(u64(view, H.sectionSizes + 8 * i, `section_sizes[${i}]`));
  }
  return {
    version,
    flags,
    architecture: flags & EIF_FLAG_ARM64 ? 'aarch64' : 'x86_64',
    defaultMem: view.getBigUint64(H.defaultMem),
    defaultCpus: view.getBigUint64(H.defaultCpus),
    reserved: view.getUint16(H.reserved),
    numSections,
    sectionOffsets,
    sectionSizes,
    unused: view.getUint32(H.unused),
    crc32: view.getUint32(H.crc32),
  };
}

export interface HeaderFields {
  readonly version?: number;
  readonly flags?: number;
  readonly defaultMem?: bigint;
  readonly defaultCpus?: bigint;
  readonly sectionOffsets: readonly number[];
  readonly sectionSizes: readonly number[];
  readonly crc32: number;
}

/** Encodes a header the way AWS's builder lays it out (unused table entries zero). */
export function encodeHeader(f: HeaderFields): Uint8Array {
  const out = new Uint8Array(EIF_HEADER_SIZE);
  const view = new DataView(out.buffer);
  out.set(EIF_MAGIC, H.magic);
  view.setUint16(H.version, f.version ?? EIF_CURRENT_VERSION);
  view.setUint16(H.flags, f.flags ?? 0);
  view.setBigUint64(H.defaultMem, f.defaultMem ?? 1073741824n);
  view.setBigUint64(H.defaultCpus, f.defaultCpus ?? 2n);
  view.setUint16(H.reserved, 0);
  view.setUint16(H.numSections, f.sectionOffsets.length);
  f.sectionOffsets.forEach((o, i) => view.setBigUint64(H.sectionOffsets + 8 * i, BigInt(o)));
  f.sectionSizes.forEach((s, i) => view.setBigUint64(H.sectionSizes + 8 * i, BigInt(s)));
  view.setUint32(H.unused, 0);
  view.setUint32(H.crc32, f.crc32 >>> 0);
  return out;
}

/** A 12-byte section header. */
export function encodeSectionHeader(type: number, size: number): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setUint16(0, type);
  view.setUint16(2, 0);
  view.setBigUint64(4, BigInt(size));
  return out;
}

/**
 * The fixed facts of the Enclave Image Format: sizes, field offsets, section types and limits.
 * Every integer in an EIF is big-endian.
 * @module
 */

/** `.eif` in ASCII. */
export const EIF_MAGIC = new Uint8Array([0x2e, 0x65, 0x69, 0x66]);
/** The version AWS's builder writes (4: the metadata section is mandatory). */
export const EIF_CURRENT_VERSION = 4;
/** Oldest version with a CRC; v0 and v1 images are refused. */
export const EIF_MIN_VERSION = 2;
export const EIF_HEADER_SIZE = 548;
export const EIF_SECTION_HEADER_SIZE = 12;
export const EIF_MAX_SECTIONS = 32;
/** Header flag bit 0: the image is for aarch64 (clear: x86_64). The other bits are reserved. */
export const EIF_FLAG_ARM64 = 0x1;
/** Largest signature section the format allows. */
export const EIF_SIGNATURE_MAX_SIZE = 32768;
/** What AWS's builder writes into the (unused) default_mem and default_cpus fields. */
export const EIF_DEFAULT_MEM = 1024 * 1024 * 1024;
export const EIF_DEFAULT_CPUS = 2;

/** Byte offsets of the header fields. */
export const HEADER_OFFSETS = {
  magic: 0x000,
  version: 0x004,
  flags: 0x006,
  defaultMem: 0x008,
  defaultCpus: 0x010,
  reserved: 0x018,
  numSections: 0x01a,
  sectionOffsets: 0x01c,
  sectionSizes: 0x11c,
  unused: 0x21c,
  crc32: 0x220,
} as const;

export const SECTION_TYPES = {
  kernel: 1,
  cmdline: 2,
  ramdisk: 3,
  signature: 4,
  metadata: 5,
} as const;

export type EifSectionType = keyof typeof SECTION_TYPES;

const NAMES: Record<number, EifSectionType> = { 1: 'kernel', 2: 'cmdline', 3: 'ramdisk', 4: 'signature', 5: 'metadata' };

/** The name of a section type number, or undefined for 0 (invalid) and unknown numbers. */
export function sectionTypeName(type: number): EifSectionType | undefined {
  return NAMES[type];
}

export interface EifHeader {
  readonly version: number;
  readonly flags: number;
  readonly architecture: 'x86_64' | 'aarch64';
  readonly defaultMem: bigint;
  readonly defaultCpus: bigint;
  readonly reserved: number;
  readonly numSections: number;
  /** num_sections entries: file offset of each section's 12-byte header. */
  readonly sectionOffsets: readonly number[];
  /** num_sections entries: size of each section's data. */
  readonly sectionSizes: readonly number[];
  readonly unused: number;
  readonly crc32: number;
}

export interface EifSection {
  readonly index: number;
  readonly type: EifSectionType;
  readonly typeNumber: number;
  /** File offset of the 12-byte section header. */
  readonly headerOffset: number;
  /** File offset of the first data byte. */
  readonly dataOffset: number;
  readonly size: number;
}

/**
 * The EIF reader: one front-to-back pass over an image that checks its structure, computes its
 * CRC and hands every section's data to a visitor in pieces, so memory stays bounded however
 * large the image is. The small sections (cmdline, metadata, signature) are also kept.
 *
 * Sections are walked through the header's offset table, as QEMU does, and must be contiguous
 * from byte 548 to the end of the file, which is also the order nitro-cli reads them in; so
 * both readers' views of an accepted image agree.
 * @module
 */
import { type Crc32Accumulator, type Crc32Function, crc32Accumulator, crc32 as jsCrc32 } from './crc32.js';
import { EifFormatError } from './errors.js';
import {
  EIF_HEADER_SIZE,
  EIF_SECTION_HEADER_SIZE,
  EIF_SIGNATURE_MAX_SIZE,
  HEADER_OFFSETS as H,
  SECTION_TYPES,
  sectionTypeName,
  type EifHeader,
  type EifSection,
} from './format.js';
import { decodeHeader } from './header.js';
import { ChunkReader, type EifSource, openSource } from './source.js';

/** Largest cmdline kept as text (larger ones are still measured). */
export const CMDLINE_KEEP_MAX = 1 << 20;
/** Largest metadata section accepted (it is parsed as a whole). */
export const METADATA_MAX_SIZE = 16 << 20;

export interface EifReadOptions {
  /** CRC-32 implementation (default: the pure-JS one). */
  readonly crc32?: Crc32Function;
  /**
   * Takes the bytes the CRC covers instead of `crc32` (each piece with its file offset), e.g. to
   * have another thread compute part of the CRC; its `result` is awaited after the last section.
   */
  readonly crc32Accumulator?: Crc32Accumulator;
  /** Called before a section's data. */
  readonly onSection?: (section: EifSection) => void;
  /** Called with each piece of a section's data, in file order. The view is only valid during the call. */
  readonly onData?: (section: EifSection, chunk: Uint8Array) => void;
}

export interface EifLayout {
  readonly header: EifHeader;
  readonly sections: readonly EifSection[];
  readonly fileSize: number;
  /** CRC stored in the header, the one computed over the image, and whether they agree. */
  readonly crc: { readonly stored: number; readonly computed: number; readonly ok: boolean };
  /** The cmdline section's bytes (null when larger than {@link CMDLINE_KEEP_MAX}). */
  readonly cmdline: Uint8Array | null;
  readonly metadata: Uint8Array | null;
  readonly signature: Uint8Array | null;
}

const SINGLE: ReadonlySet<number> = new Set([SECTION_TYPES.kernel, SECTION_TYPES.cmdline, SECTION_TYPES.signature, SECTION_TYPES.metadata]);

function checkTable(header: EifHeader, size: number | undefined): void {
  let expected = EIF_HEADER_SIZE;
  for (let i = 0; i < header.numSections; i++) {
    const offset = header.sectionOffsets[i]!;
    const dataSize = header.sectionSizes[i]!;
    const offsetField = H.sectionOffsets + 8 * i;
    if (size !== undefined && offset + EIF_SECTION_HEADER_SIZE > size) {
      throw new EifFormatError('SECTION_BEYOND_FILE', offsetField, `section_offsets[${i}] is ${offset}, but a section header there would end past the end of the file (${size} bytes)`);
    }
    if (offset !== expected) {
      throw new EifFormatError(
        'SECTION_OFFSET_MISMATCH',
        offsetField,
        `section_offsets[${i}] is ${offset}, expected ${expected}: sections must follow one another from byte ${EIF_HEADER_SIZE}`,
      );
    }
    expected = offset + EIF_SECTION_HEADER_SIZE + dataSize;
    if (size !== undefined && expected > size) {
      throw new EifFormatError('SECTION_BEYOND_FILE', H.sectionSizes + 8 * i, `section_sizes[${i}] is ${dataSize}: section ${i} would end at ${expected}, past the end of the file (${size} bytes)`);
    }
  }
}

/** Reads, checks and walks an image. Throws {@link EifFormatError}; a CRC mismatch is reported, not thrown. */
export async function readEif(source: EifSource, options: EifReadOptions = {}): Promise<EifLayout> {
  const crc = options.crc32Accumulator ?? crc32Accumulator(options.crc32 ?? jsCrc32);
  const { size, chunks } = openSource(source);
  const r = new ChunkReader(chunks);
  try {
    const headerBytes = await r.read(EIF_HEADER_SIZE);
    const header = decodeHeader(headerBytes);
    checkTable(header, size);
    crc.update(headerBytes.subarray(0, H.crc32), 0);

    const sections: EifSection[] = [];
    const seen = new Set<number>();
    let cmdline: Uint8Array | null = null;
    let metadata: Uint8Array | null = null;
    let signature: Uint8Array | null = null;

    for (let i = 0; i < header.numSections; i++) {
      const headerOffset = r.position;
      const sh = await r.read(EIF_SECTION_HEADER_SIZE);
      if (sh.length < EIF_SECTION_HEADER_SIZE) {
        throw new EifFormatError('TRUNCATED_SECTION', r.position, `file ends inside the header of section ${i} (which starts at ${headerOffset})`);
      }
      crc.update(sh, headerOffset);
      const view = new DataView(sh.buffer, sh.byteOffset, EIF_SECTION_HEADER_SIZE);
      const typeNumber = view.getUint16(0);
      const flags = view.getUint16(2);
      const dataSize = view.getBigUint64(4);
      if (flags !== 0) {
        throw new EifFormatError('SECTION_FLAGS', headerOffset + 2, `section ${i} has flags 0x${flags.toString(16).padStart(4, '0')}, expected 0`);
      }
      if (dataSize !== BigInt(header.sectionSizes[i]!)) {
        throw new EifFormatError(
          'SECTION_SIZE_MISMATCH',
          headerOffset + 4,
          `section ${i} header says ${dataSize} bytes but the EIF header's section_sizes[${i}] says ${header.sectionSizes[i]}`,
        );
      }
      const type = sectionTypeName(typeNumber);
      if (type === undefined) {
        throw new EifFormatError('UNKNOWN_SECTION_TYPE', headerOffset, `section ${i} has type ${typeNumber}, expected 1 (kernel) to 5 (metadata)`);
      }
      if (SINGLE.has(typeNumber) && seen.has(typeNumber)) {
        throw new EifFormatError('DUPLICATE_SECTION', headerOffset, `section ${i} is a second ${type} section; an EIF has at most one`);
      }
      if (type === 'ramdisk' && !seen.has(SECTION_TYPES.kernel)) {
        throw new EifFormatError('RAMDISK_BEFORE_KERNEL', headerOffset, `section ${i} is a ramdisk before the kernel section; ramdisks must come after the kernel`);
      }
      const n = header.sectionSizes[i]!;
      if (type === 'signature' && n > EIF_SIGNATURE_MAX_SIZE) {
        throw new EifFormatError('SIGNATURE_TOO_LARGE', headerOffset + 4, `signature section is ${n} bytes, more than the ${EIF_SIGNATURE_MAX_SIZE} allowed`);
      }
      if (type === 'metadata' && n > METADATA_MAX_SIZE) {
        throw new EifFormatError('METADATA_TOO_LARGE', headerOffset + 4, `metadata section is ${n} bytes, more than the ${METADATA_MAX_SIZE} this reader accepts`);
      }
      seen.add(typeNumber);
      const section: EifSection = { index: i, type, typeNumber, headerOffset, dataOffset: headerOffset + EIF_SECTION_HEADER_SIZE, size: n };
      sections.push(section);
      options.onSection?.(section);

      const keep = type === 'metadata' || type === 'signature' || (type === 'cmdline' && n <= CMDLINE_KEEP_MAX) ? new Uint8Array(n) : null;
      let kept = 0;
      let at = section.dataOffset;
      const onData = options.onData;
      const got = await r.pipe(n, (chunk) => {
        crc.update(chunk, at);
        at += chunk.length;
        if (keep) {
          keep.set(chunk, kept);
          kept += chunk.length;
        }
        onData?.(section, chunk);
      });
      if (got < n) {
        throw new EifFormatError('TRUNCATED_SECTION', r.position, `file ends ${n - got} bytes before the end of section ${i} (${type}, ${n} bytes from ${section.dataOffset})`);
      }
      if (type === 'cmdline') cmdline = keep;
      else if (type === 'metadata') metadata = keep;
      else if (type === 'signature') signature = keep;
    }

    const end = r.position;
    if (!(await r.atEnd())) {
      throw new EifFormatError('TRAILING_DATA', end, `bytes follow the last section (section ${header.numSections - 1} ends at ${end})`);
    }
    const missing = (t: number, code: 'MISSING_KERNEL' | 'MISSING_CMDLINE' | 'MISSING_RAMDISK' | 'MISSING_METADATA', what: string) => {
      if (!seen.has(t)) throw new EifFormatError(code, end, what);
    };
    missing(SECTION_TYPES.kernel, 'MISSING_KERNEL', 'the image has no kernel section');
    missing(SECTION_TYPES.cmdline, 'MISSING_CMDLINE', 'the image has no cmdline section');
    missing(SECTION_TYPES.ramdisk, 'MISSING_RAMDISK', 'the image has no ramdisk section');
    if (header.version >= 4) missing(SECTION_TYPES.metadata, 'MISSING_METADATA', `the image is version ${header.version} but has no metadata section (mandatory from version 4)`);

    const computed = (await crc.result()) >>> 0;
    return {
      header,
      sections,
      fileSize: end,
      crc: { stored: header.crc32, computed, ok: header.crc32 === computed },
      cmdline,
      metadata,
      signature,
    };
  } finally {
    await r.close();
  }
}

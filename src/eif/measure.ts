/**
 * The measurements of an EIF: PCR0, PCR1, PCR2 and (signed images) PCR8, each one extend of a
 * zero register with the SHA-384 of the selected section data, in file order:
 *
 * - PCR0: kernel, cmdline and every ramdisk;
 * - PCR1: kernel, cmdline and the first ramdisk;
 * - PCR2: every ramdisk but the first (always extended, even when there is none);
 * - PCR8: the DER of the first signature entry's certificate.
 *
 * Everything is done in the reader's single pass. PCR0 and PCR1 share their running hash until
 * the first byte that only PCR0 covers, so bytes common to both are hashed once.
 * @module
 */
import { latin1Text } from '../x509/pem.js';
import { certificateDerFromPem } from './certificate.js';
import { EifFormatError } from './errors.js';
import type { EifSection } from './format.js';
import { type Sha384Factory, type Sha384Hasher, ZERO_PCR, nobleSha384 } from './hash.js';
import { type EifLayout, type EifReadOptions, readEif } from './reader.js';
import { type PcrSignatureEntry, SignatureSectionError, decodeSignatureSection } from './signature-section.js';
import type { EifSource } from './source.js';
import { loadNistCurves } from '../x509/nist-curves.js';
import type { EcdsaVerifier } from './cose-sign1.js';

export interface EifMeasureOptions {
  readonly crc32?: EifReadOptions['crc32'];
  /** Takes the CRC's bytes instead of `crc32` (see {@link EifReadOptions}). */
  readonly crc32Accumulator?: EifReadOptions['crc32Accumulator'];
  /** SHA-384 implementation (default: @noble/hashes). */
  readonly sha384?: Sha384Factory;
  /**
   * PCR2's content digest computed elsewhere (a runtime with threads can hash those bytes on
   * another core, reading the same file, while PCR0's chain hashes them here). Called once,
   * after the image was read, with the byte ranges PCR2 covers (the data of every ramdisk but
   * the first, in file order); it must return the SHA-384 of exactly those bytes, in order.
   * When given, this thread does not hash them a second time.
   */
  readonly pcr2Digest?: (ranges: readonly EifByteRange[]) => Uint8Array | Promise<Uint8Array>;
  /**
   * The verifier the signature will be checked with (checkEifSignature, describeEif). Without
   * one, measuring a signed image loads @noble/curves for the default verifier; with one, it
   * does not.
   */
  readonly signatureVerifier?: EcdsaVerifier;
}

/** A run of bytes in an image file. */
export interface EifByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface EifPcrs {
  readonly pcr0: Uint8Array;
  readonly pcr1: Uint8Array;
  readonly pcr2: Uint8Array;
  /** Null for an unsigned image (the PCR then stays zero). */
  readonly pcr8: Uint8Array | null;
}

export interface EifMeasurement {
  readonly layout: EifLayout;
  /** The extended values: what describe-eif prints and a document attests. */
  readonly pcrs: EifPcrs;
  /** The SHA-384 of each PCR's content, before the extend. */
  readonly contentDigests: EifPcrs;
  /** The decoded signature section of a signed image. */
  readonly signature: { readonly entries: readonly PcrSignatureEntry[]; readonly certificateDer: Uint8Array } | null;
}

function extend(digest: Uint8Array, factory: Sha384Factory): Uint8Array {
  const h = factory();
  h.update(ZERO_PCR);
  h.update(digest);
  return h.digest();
}

/** Decodes a signature section and takes the DER of entry 0's certificate. */
export function signingCertificateDer(section: Uint8Array, dataOffset: number): { entries: PcrSignatureEntry[]; certificateDer: Uint8Array } {
  let entries: PcrSignatureEntry[];
  try {
    entries = decodeSignatureSection(section);
  } catch (e) {
    if (e instanceof SignatureSectionError) throw new EifFormatError('BAD_SIGNATURE_SECTION', dataOffset + e.offset, `signature section: ${e.message}`);
    throw e;
  }
  const pem = latin1Text(entries[0]!.signingCertificate);
  const der = certificateDerFromPem(pem);
  if (!der) throw new EifFormatError('BAD_CERTIFICATE', dataOffset, 'signature section: the signing certificate is not a PEM X.509 certificate');
  return { entries, certificateDer: der };
}

/** Reads and measures an image in one pass. Throws {@link EifFormatError}. */
export async function measureEif(source: EifSource, options: EifMeasureOptions = {}): Promise<EifMeasurement> {
  const factory = options.sha384 ?? nobleSha384;
  const image = factory();
  let bootstrap: Sha384Hasher | null = null; // null while it equals `image`
  const external = options.pcr2Digest;
  const app = external ? null : factory();
  const appRanges: EifByteRange[] = [];
  let ramdisks = 0;
  let toApp = false;
  const layout = await readEif(source, {
    ...(options.crc32 ? { crc32: options.crc32 } : {}),
    ...(options.crc32Accumulator ? { crc32Accumulator: options.crc32Accumulator } : {}),
    onSection(s: EifSection) {
      if (s.type !== 'ramdisk') return;
      toApp = ramdisks++ > 0;
      if (toApp) appRanges.push({ offset: s.dataOffset, length: s.size });
      if (toApp && bootstrap === null) bootstrap = image.clone();
    },
    onData(s: EifSection, chunk: Uint8Array) {
      if (s.type === 'kernel' || s.type === 'cmdline' || (s.type === 'ramdisk' && !toApp)) {
        image.update(chunk);
        bootstrap?.update(chunk);
      } else if (s.type === 'ramdisk') {
        image.update(chunk);
        app?.update(chunk);
      }
    },
  });
  const b = bootstrap as Sha384Hasher | null;
  const d1 = b ? b.digest() : image.clone().digest();
  const d0 = image.digest();
  const d2 = app ? app.digest() : await external!(appRanges);
  let signature: EifMeasurement['signature'] = null;
  let d8: Uint8Array | null = null;
  if (layout.signature) {
    const s = layout.sections.find((x) => x.type === 'signature')!;
    signature = signingCertificateDer(layout.signature, s.dataOffset);
    if (!options.signatureVerifier) await loadNistCurves(); // the default verifier runs synchronously
    const h = factory();
    h.update(signature.certificateDer);
    d8 = h.digest();
  }
  return {
    layout,
    contentDigests: { pcr0: d0, pcr1: d1, pcr2: d2, pcr8: d8 },
    pcrs: {
      pcr0: extend(d0, factory),
      pcr1: extend(d1, factory),
      pcr2: extend(d2, factory),
      pcr8: d8 && extend(d8, factory),
    },
    signature,
  };
}

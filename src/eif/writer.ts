/**
 * The EIF writer: the same bytes AWS's `EifBuilder` (used by nitro-cli and eif_build) writes for
 * the same inputs. Layout: header, then kernel, cmdline, metadata, each ramdisk, and the
 * signature section last when signing; version 4, default_mem 1 GiB, default_cpus 2.
 *
 * Inputs are re-readable sources, so images of any size are built in bounded memory: one pass
 * measures (PCR0 must be known before it can be signed), one computes the CRC, and the caller's
 * pass over {@link BuiltEif.chunks} produces the file.
 * @module
 */
import { type NistCurves, loadNistCurves, nistCurves } from '../x509/nist-curves.js';
import type { EcCurve } from '../x509/oids.js';
import { latin1Text } from '../x509/pem.js';
import { certificateDerFromPem, parseCertificate } from './certificate.js';
import { signCoseSign1 } from './cose-sign1.js';
import { type Crc32Function, crc32 as jsCrc32 } from './crc32.js';
import { EifBuildError } from './errors.js';
import { EIF_FLAG_ARM64, EIF_HEADER_SIZE, EIF_MAX_SECTIONS, EIF_SECTION_HEADER_SIZE, HEADER_OFFSETS, SECTION_TYPES } from './format.js';
import { type Sha384Factory, ZERO_PCR, nobleSha384 } from './hash.js';
import { encodeHeader, encodeSectionHeader } from './header.js';
import type { EifPcrs } from './measure.js';
import { type EifIdentity, encodeMetadata } from './metadata.js';
import { parseEcPrivateKeyPem } from './private-key.js';
import { encodePcrInfo, encodeSignatureSection } from './signature-section.js';
import { type SizedSource, sizedSource } from './source.js';

export type EifInput = Uint8Array | Blob | SizedSource;

export type EifSigning =
  /** Sign PCR0 with this key (deterministic ECDSA). */
  | { readonly certificatePem: Uint8Array | string; readonly privateKeyPem: string }
  /** Use an existing COSE_Sign1 (e.g. to reproduce an image signed elsewhere). */
  | { readonly certificatePem: Uint8Array | string; readonly coseSign1: Uint8Array };

export interface EifBuildOptions {
  readonly kernel: EifInput;
  /** The kernel command line, stored without a terminating NUL. */
  readonly cmdline: string;
  /** At least one; nitro-cli writes the bootstrap ramdisk then the application ramdisk. */
  readonly ramdisks: readonly EifInput[];
  /** The metadata section: its exact bytes, or the identity to encode. */
  readonly metadata: Uint8Array | EifIdentity;
  readonly architecture?: 'x86_64' | 'aarch64';
  readonly signing?: EifSigning;
  readonly sha384?: Sha384Factory;
  readonly crc32?: Crc32Function;
}

export interface BuiltEif {
  /** Total file size. */
  readonly size: number;
  readonly pcrs: EifPcrs;
  /** The 548-byte header (CRC included). */
  readonly header: Uint8Array;
  /** The file's bytes, front to back (re-reads the inputs). */
  chunks(): AsyncIterable<Uint8Array>;
}

interface Part {
  readonly type: number;
  readonly source: SizedSource;
}

const ECDSA: Record<EcCurve, (c: NistCurves) => NistCurves['p256']> = { 'P-256': (c) => c.p256, 'P-384': (c) => c.p384, 'P-521': (c) => c.p521 };

async function* passOver(source: SizedSource, what: string): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const c of source.chunks()) {
    n += c.length;
    if (n > source.size) break;
    yield c;
  }
  if (n !== source.size) throw new EifBuildError('INPUT_CHANGED', `${what} changed while the image was being built (expected ${source.size} bytes)`);
}

function extend(d: Uint8Array, f: Sha384Factory): Uint8Array {
  const h = f();
  h.update(ZERO_PCR);
  h.update(d);
  return h.digest();
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function signatureSection(signing: EifSigning, pcr0: Uint8Array): Uint8Array {
  const certBytes = typeof signing.certificatePem === 'string' ? new TextEncoder().encode(signing.certificatePem) : signing.certificatePem;
  const der = certificateDerFromPem(latin1Text(certBytes));
  if (!der) throw new EifBuildError('BAD_CERTIFICATE', 'the signing certificate is not a PEM X.509 certificate');
  let cose: Uint8Array;
  if ('coseSign1' in signing) cose = signing.coseSign1;
  else {
    const cert = parseCertificate(der);
    const key = parseEcPrivateKeyPem(signing.privateKeyPem);
    if (!cert.publicKey || cert.publicKey.curve !== key.curve || !equal(ECDSA[key.curve](nistCurves()).getPublicKey(key.secret, false), cert.publicKey.point)) {
      throw new EifBuildError('KEY_MISMATCH', "the private key does not belong to the signing certificate's public key");
    }
    cose = signCoseSign1(encodePcrInfo(0, pcr0), key);
  }
  return encodeSignatureSection([{ signingCertificate: certBytes, signature: cose }]);
}

/** Plans, measures and (when asked) signs an image. Write it out with {@link BuiltEif.chunks}. */
export async function buildEif(options: EifBuildOptions): Promise<BuiltEif> {
  const f = options.sha384 ?? nobleSha384;
  const crcFn = options.crc32 ?? jsCrc32;
  if (options.cmdline.includes('\0')) throw new EifBuildError('BAD_CMDLINE', 'the kernel command line contains a NUL character');
  if (options.ramdisks.length === 0) throw new EifBuildError('NO_RAMDISK', 'an EIF needs at least one ramdisk');
  const count = 3 + options.ramdisks.length + (options.signing ? 1 : 0);
  if (count > EIF_MAX_SECTIONS) throw new EifBuildError('TOO_MANY_SECTIONS', `${count} sections do not fit in an EIF (at most ${EIF_MAX_SECTIONS})`);

  const kernel = sizedSource(options.kernel);
  const cmdline = sizedSource(new TextEncoder().encode(options.cmdline));
  const metadata = sizedSource(options.metadata instanceof Uint8Array ? options.metadata : encodeMetadata(options.metadata));
  const ramdisks = options.ramdisks.map(sizedSource);

  // Pass 1: measure (PCR0 is needed before signing).
  const image = f();
  const app = f();
  for (const [s, what] of [[kernel, 'kernel'], [cmdline, 'cmdline'], [ramdisks[0]!, 'ramdisk 0']] as const) {
    for await (const c of passOver(s, what)) image.update(c);
  }
  const bootstrap = image.clone().digest();
  for (let i = 1; i < ramdisks.length; i++) {
    for await (const c of passOver(ramdisks[i]!, `ramdisk ${i}`)) {
      image.update(c);
      app.update(c);
    }
  }
  const d0 = image.digest();
  const pcrs0 = { pcr0: extend(d0, f), pcr1: extend(bootstrap, f), pcr2: extend(app.digest(), f) };

  const parts: Part[] = [
    { type: SECTION_TYPES.kernel, source: kernel },
    { type: SECTION_TYPES.cmdline, source: cmdline },
    { type: SECTION_TYPES.metadata, source: metadata },
    ...ramdisks.map((source) => ({ type: SECTION_TYPES.ramdisk, source })),
  ];
  let pcr8: Uint8Array | null = null;
  if (options.signing) {
    if (!('coseSign1' in options.signing)) await loadNistCurves();
    const section = signatureSection(options.signing, pcrs0.pcr0);
    parts.push({ type: SECTION_TYPES.signature, source: sizedSource(section) });
    const der = certificateDerFromPem(latin1Text(typeof options.signing.certificatePem === 'string' ? new TextEncoder().encode(options.signing.certificatePem) : options.signing.certificatePem))!;
    const h = f();
    h.update(der);
    pcr8 = extend(h.digest(), f);
  }

  const offsets: number[] = [];
  let at = EIF_HEADER_SIZE;
  for (const p of parts) {
    offsets.push(at);
    at += EIF_SECTION_HEADER_SIZE + p.source.size;
  }
  const size = at;
  const fields = {
    flags: options.architecture === 'aarch64' ? EIF_FLAG_ARM64 : 0,
    sectionOffsets: offsets,
    sectionSizes: parts.map((p) => p.source.size),
  };

  // Pass 2: the CRC over the header (minus the CRC field) and every section.
  let crc = crcFn(0, encodeHeader({ ...fields, crc32: 0 }).subarray(0, HEADER_OFFSETS.crc32));
  for (const p of parts) {
    crc = crcFn(crc, encodeSectionHeader(p.type, p.source.size));
    for await (const c of passOver(p.source, `section ${p.type}`)) crc = crcFn(crc, c);
  }
  const header = encodeHeader({ ...fields, crc32: crc });

  return {
    size,
    header,
    pcrs: { ...pcrs0, pcr8 },
    async *chunks() {
      yield header;
      for (const p of parts) {
        yield encodeSectionHeader(p.type, p.source.size);
        yield* passOver(p.source, `section ${p.type}`);
      }
    },
  };
}

/** Builds an image in memory. */
export async function buildEifBytes(options: EifBuildOptions): Promise<{ bytes: Uint8Array; pcrs: EifPcrs }> {
  const built = await buildEif(options);
  const bytes = new Uint8Array(built.size);
  let o = 0;
  for await (const c of built.chunks()) {
    bytes.set(c, o);
    o += c.length;
  }
  return { bytes, pcrs: built.pcrs };
}

/**
 * PEM (RFC 7468) and base64 without Node's Buffer: what certificates and keys look like on disk.
 * The one PEM module of the package.
 * @module
 */

/** Thrown for text that is not the PEM (or base64) expected. */
export class PemError extends Error {
  override readonly name = 'PemError';
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) LOOKUP[B64.charCodeAt(i)] = i;

/** Standard-alphabet base64 with whitespace and padding already removed; null when it is not that. */
function decodeBare(s: string): Uint8Array | null {
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let v = 0;
    const n = Math.min(4, s.length - i);
    for (let j = 0; j < 4; j++) {
      const code = j < n ? s.charCodeAt(i + j) : 0x41;
      const c = code > 0xff ? -1 : LOOKUP[code]!;
      if (c < 0) return null;
      v = (v << 6) | (j < n ? c : 0);
    }
    out[o++] = (v >>> 16) & 0xff;
    if (n > 2) out[o++] = (v >>> 8) & 0xff;
    if (n > 3) out[o++] = v & 0xff;
  }
  return out.subarray(0, o);
}

export function base64Encode(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += B64[(v >>> 18) & 63]! + B64[(v >>> 12) & 63]!;
    s += i + 1 < bytes.length ? B64[(v >>> 6) & 63]! : '=';
    s += i + 2 < bytes.length ? B64[v & 63]! : '=';
  }
  return s;
}

/** Standard or URL-safe base64, padding optional, whitespace ignored. */
export function base64Decode(text: string): Uint8Array {
  const s = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(s) ? decodeBare(s.replace(/=+$/, '')) : null;
  if (!bytes) throw new PemError('not valid base64');
  return bytes;
}

/** One PEM block with 64-character lines and a final newline. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = base64Encode(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every block with the given label, in order; a body that is not base64 throws {@link PemError}. */
export function pemDecodeAll(text: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([^-]*)-----END ${label}-----`, 'g');
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(re)) out.push(base64Decode(m[1]!));
  return out;
}

/** Exactly one block with the given label. */
export function pemDecode(text: string, label: string): Uint8Array {
  const all = pemDecodeAll(text, label);
  if (all.length !== 1) {
    throw new PemError(all.length === 0 ? `no '-----BEGIN ${label}-----' block found` : `${all.length} '${label}' blocks found, expected 1`);
  }
  return all[0]!;
}

export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/** Every PEM block in `text` whatever its label, in order, as OpenSSL scans; blocks whose body is not base64 are skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const der = decodeBare(m[2]!.replace(/\s/g, '').replace(/=+$/, ''));
    if (der) out.push({ label: m[1]!, der });
  }
  return out;
}

/** The first block with one of `labels`, or undefined. */
export function findPem(text: string, labels: readonly string[]): PemBlock | undefined {
  return pemBlocks(text).find((b) => labels.includes(b.label));
}

/** Bytes as Latin-1 text (PEM is ASCII; this never fails). */
export function latin1Text(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

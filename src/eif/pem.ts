/**
 * PEM armour: finding a labelled block and decoding its base64 body (no Buffer, no atob, so it
 * runs anywhere).
 * @module
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) LOOKUP[B64.charCodeAt(i)] = i;

/** Strict base64 (whitespace ignored, padding optional). Returns null when not base64. */
export function base64Decode(text: string): Uint8Array | null {
  const s = text.replace(/[\s]/g, '').replace(/=+$/, '');
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    let v = 0;
    const n = Math.min(4, s.length - i);
    for (let j = 0; j < 4; j++) {
      const c = j < n ? LOOKUP[s.charCodeAt(i + j) & 0xff]! : 0;
      if (c < 0 || (j < n && s.charCodeAt(i + j) > 0xff)) return null;
      v = (v << 6) | c;
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

export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/** Every PEM block in `text`, in order. Blocks whose body is not base64 are skipped. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const der = base64Decode(m[2]!);
    if (der) out.push({ label: m[1]!, der });
  }
  return out;
}

/** The first block with one of `labels`, or undefined. */
export function findPem(text: string, labels: readonly string[]): PemBlock | undefined {
  return pemBlocks(text).find((b) => labels.includes(b.label));
}

/** Wraps DER in PEM armour with 64-column lines. */
export function toPem(label: string, der: Uint8Array): string {
  const b = base64Encode(der);
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 64) lines.push(b.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Bytes as Latin-1 text (PEM is ASCII; this never fails). */
export function latin1Text(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/**
 * PEM (RFC 7468) and base64 without Node's Buffer: what certificates and keys look like on disk.
 * @module
 */

/** Thrown for text that is not the PEM (or base64) expected. */
export class PemError extends Error {
  override readonly name = 'PemError';
}

export function base64Encode(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Standard or URL-safe base64, padding optional, whitespace ignored. */
export function base64Decode(text: string): Uint8Array {
  let s = text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new PemError('not valid base64');
  }
  s = s.replace(/=+$/, '');
  s += '='.repeat((4 - (s.length % 4)) % 4);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** One PEM block with 64-character lines and a final newline. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = base64Encode(der);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every block with the given label, in order. */
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

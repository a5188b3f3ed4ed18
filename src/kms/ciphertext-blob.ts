/**
 * The emulator's ciphertext blob: opaque to callers, bound to one KMS key and one encryption
 * context, as KMS's are. Layout (version 1):
 *
 *   01 | key id (16 bytes, the key's UUID) | IV (12 bytes) | AES-256-GCM ciphertext and 16-byte tag
 *
 * The additional authenticated data is a label, the key id and the encryption context in a
 * canonical form (pairs sorted by key, each string length-prefixed), so a blob opens only with
 * its own key and exactly the context it was made with. Real KMS blobs have another layout;
 * nothing outside this module reads the bytes.
 * @module
 */
import { concatBytes, hexToBytes, bytesToHex } from '@noble/hashes/utils.js';

const VERSION = 1;
const HEADER = 1 + 16 + 12;
const TAG_BYTES = 16;
const LABEL = new TextEncoder().encode('nsm-emulator kms ciphertext v1');
const utf8 = new TextEncoder();

export type EncryptionContext = Readonly<Record<string, string>>;

const view = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>;

function u16(n: number): Uint8Array {
  return new Uint8Array([n >>> 8, n & 0xff]);
}

/** The encryption context in canonical byte form (sorted pairs, length-prefixed strings). */
export function canonicalContext(context: EncryptionContext): Uint8Array {
  const keys = Object.keys(context).sort();
  const parts: Uint8Array[] = [u16(keys.length)];
  for (const k of keys) {
    const kb = utf8.encode(k);
    const vb = utf8.encode(context[k]!);
    parts.push(u16(kb.length), kb, u16(vb.length), vb);
  }
  return concatBytes(...parts);
}

export function uuidToBytes(id: string): Uint8Array {
  return hexToBytes(id.replace(/-/g, ''));
}

export function bytesToUuid(b: Uint8Array): string {
  const h = bytesToHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Imports 32 bytes of key material for AES-256-GCM. */
export function importBlobKey(material: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', view(material), { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

function aad(keyId: Uint8Array, context: EncryptionContext): Uint8Array {
  return concatBytes(LABEL, keyId, canonicalContext(context));
}

/** Seals `plaintext` under the key `keyId` (UUID text) and `context`. */
export async function sealBlob(key: CryptoKey, keyId: string, plaintext: Uint8Array, context: EncryptionContext): Promise<Uint8Array> {
  const id = uuidToBytes(keyId);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: view(aad(id, context)) }, key, view(plaintext));
  return concatBytes(new Uint8Array([VERSION]), id, iv, new Uint8Array(sealed));
}

/** The key id a blob names, or null when the bytes are not a blob of this format. */
export function blobKeyId(blob: Uint8Array): string | null {
  if (blob.length < HEADER + TAG_BYTES || blob[0] !== VERSION) return null;
  return bytesToUuid(blob.subarray(1, 17));
}

/** Opens a blob; null when it was not made with this key and context (or was altered). */
export async function openBlob(key: CryptoKey, blob: Uint8Array, context: EncryptionContext): Promise<Uint8Array | null> {
  if (blobKeyId(blob) === null) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: view(blob.subarray(17, HEADER)), additionalData: view(aad(blob.subarray(1, 17), context)) },
      key,
      view(blob.subarray(HEADER)),
    );
    return new Uint8Array(plain);
  } catch {
    return null;
  }
}

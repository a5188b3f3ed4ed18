/**
 * CiphertextForRecipient: the CMS EnvelopedData (RFC 5652) KMS returns instead of a plaintext
 * when a request carries an attestation document, built and opened over WebCrypto.
 *
 * Shape, as KMS sends it: a BER ContentInfo (id-envelopedData) with indefinite lengths on the
 * outer layers; EnvelopedData version 2; one KeyTransRecipientInfo (version 2) whose rid is
 * [0] subjectKeyIdentifier = SHA-256 of the recipient's SubjectPublicKeyInfo; key encryption
 * RSAES-OAEP with explicit SHA-256 / MGF1-SHA-256 parameters; a random AES-256 key; content
 * id-data encrypted with AES-256-CBC (PKCS#7 padding), the IV as the algorithm parameter, and
 * the ciphertext in a constructed [0] of OCTET STRING chunks.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { TAG } from '../x509/der.js';
import { der, derOctetString, derOid, derSequence, derSmallInt } from '../x509/der-write.js';
import { pemDecode } from '../x509/pem.js';
import { BerError, type BerNode, berIndefinite, berStringBytes, readBer } from './ber.js';
import { parseRsaSpki } from './rsa-spki.js';

export const CMS_OID = {
  envelopedData: '1.2.840.113549.1.7.3',
  data: '1.2.840.113549.1.7.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/** A CiphertextForRecipient that cannot be opened: says which part and why. */
export class CmsError extends Error {
  override readonly name = 'CmsError';
}

const subtle = (): SubtleCrypto => {
  const s = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this runtime');
  return s;
};
const view = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>;

const SHA256_ALG = derSequence(derOid(CMS_OID.sha256), der(TAG.NULL));
/** AlgorithmIdentifier rsaesOaep with explicit hashFunc [0] sha256 and maskGenFunc [1] mgf1(sha256). */
const OAEP_ALG = derSequence(
  derOid(CMS_OID.rsaesOaep),
  derSequence(der(0xa0, SHA256_ALG), der(0xa1, derSequence(derOid(CMS_OID.mgf1), SHA256_ALG))),
);

/** Imports a recipient SPKI (checked to be RSA) for RSA-OAEP-SHA-256 encryption. */
export async function importRecipientKey(spki: Uint8Array): Promise<CryptoKey> {
  parseRsaSpki(spki);
  return subtle().importKey('spki', view(spki), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
}

export interface RecipientEnvelopeOptions {
  /** The recipient's RSA key as imported by {@link importRecipientKey} (saves re-importing). */
  readonly key?: CryptoKey;
  /** Content-encryption key and IV (default: fresh random); for reproducible tests only. */
  readonly cek?: Uint8Array;
  readonly iv?: Uint8Array;
}

/** Encrypts `plaintext` to the RSA public key `spki` as KMS's CiphertextForRecipient. */
export async function buildCiphertextForRecipient(spki: Uint8Array, plaintext: Uint8Array, options: RecipientEnvelopeOptions = {}): Promise<Uint8Array> {
  const s = subtle();
  const cek = options.cek ?? crypto.getRandomValues(new Uint8Array(32));
  const iv = options.iv ?? crypto.getRandomValues(new Uint8Array(16));
  if (cek.length !== 32 || iv.length !== 16) throw new RangeError('cek must be 32 bytes and iv 16 bytes');
  // The two imports are independent: run them together.
  const [rsa, aes] = await Promise.all([
    options.key ?? importRecipientKey(spki),
    s.importKey('raw', view(cek), { name: 'AES-CBC' }, false, ['encrypt']),
  ]);
  const [encryptedKey, content] = await Promise.all([
    s.encrypt({ name: 'RSA-OAEP' }, rsa, view(cek)),
    s.encrypt({ name: 'AES-CBC', iv: view(iv) }, aes, view(plaintext)),
  ]);
  const ktri = derSequence(
    derSmallInt(2),
    der(0x80, sha256(spki)), // rid: [0] IMPLICIT SubjectKeyIdentifier
    OAEP_ALG,
    derOctetString(new Uint8Array(encryptedKey)),
  );
  const encryptedContentInfo = berIndefinite(
    0x30,
    derOid(CMS_OID.data),
    derSequence(derOid(CMS_OID.aes256Cbc), derOctetString(iv)),
    berIndefinite(0xa0, derOctetString(new Uint8Array(content))),
  );
  const envelopedData = berIndefinite(0x30, derSmallInt(2), der(TAG.SET, ktri), encryptedContentInfo);
  return berIndefinite(0x30, derOid(CMS_OID.envelopedData), berIndefinite(0xa0, envelopedData));
}

/** What the envelope says, before anything is decrypted. */
export interface RecipientEnvelope {
  /** SHA-256 of the recipient's SubjectPublicKeyInfo. */
  readonly subjectKeyIdentifier: Uint8Array;
  readonly encryptedKey: Uint8Array;
  readonly iv: Uint8Array;
  readonly encryptedContent: Uint8Array;
}

function oidOf(node: BerNode | undefined, what: string): string {
  if (!node || node.tag !== TAG.OID) throw new CmsError(`${what}: expected an OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let v = 0;
  for (const b of node.value) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) (arcs.push(v), (v = 0));
  }
  const first = arcs[0] ?? 0;
  return [...(first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80]), ...arcs.slice(1)].join('.');
}

function expect(node: BerNode | undefined, tag: number, what: string): BerNode {
  if (!node) throw new CmsError(`${what}: missing`);
  const ok = tag === TAG.OCTET_STRING ? (node.tag & 0xdf) === TAG.OCTET_STRING : node.tag === tag;
  if (!ok) {
    throw new CmsError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`);
  }
  return node;
}

function smallInt(node: BerNode | undefined, what: string): number {
  const n = expect(node, TAG.INTEGER, what);
  if (n.value.length !== 1) throw new CmsError(`${what}: expected a small INTEGER`);
  return n.value[0]!;
}

/** An AlgorithmIdentifier naming `oid` with absent or NULL parameters (both forms are seen). */
function isAlg(node: BerNode | undefined, oid: string): boolean {
  if (!node || node.tag !== 0x30) return false;
  const [id, params, ...rest] = node.children;
  return rest.length === 0 && oidOf(id, 'algorithm') === oid && (params === undefined || (params.tag === TAG.NULL && params.value.length === 0));
}

/** RSAES-OAEP-params must say SHA-256, MGF1 with SHA-256 and the empty label (the defaults are SHA-1). */
function checkOaepParameters(params: BerNode | undefined): void {
  const bad = (what: string): never => {
    throw new CmsError(`keyEncryptionAlgorithm: ${what}; KMS uses RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label`);
  };
  if (!params || params.tag !== 0x30) return bad('RSAES-OAEP-params are missing (the defaults are SHA-1)');
  const byTag = new Map(params.children.map((c) => [c.tag, c]));
  if (!isAlg(byTag.get(0xa0)?.children[0], CMS_OID.sha256)) bad('hashFunc is not sha256');
  const mgf = byTag.get(0xa1)?.children[0];
  if (!mgf || mgf.tag !== 0x30 || oidOf(mgf.children[0], 'maskGenFunc') !== CMS_OID.mgf1 || !isAlg(mgf.children[1], CMS_OID.sha256)) bad('maskGenFunc is not mgf1 with sha256');
  const source = byTag.get(0xa2)?.children[0];
  if (source) {
    const label = source.children[1];
    if (oidOf(source.children[0], 'pSourceFunc') !== '1.2.840.113549.1.1.9' || !label || berStringBytes(label, TAG.OCTET_STRING, 'label').length !== 0) bad('the label is not empty');
  }
}

/** Parses a CiphertextForRecipient; throws {@link CmsError} naming the part that is not KMS's shape. */
export function parseCiphertextForRecipient(bytes: Uint8Array): RecipientEnvelope {
  let top: BerNode;
  try {
    top = readBer(bytes, 'CiphertextForRecipient');
  } catch (e) {
    throw new CmsError(`not BER: ${(e as BerError).message}`);
  }
  expect(top, 0x30, 'ContentInfo');
  if (oidOf(top.children[0], 'ContentInfo.contentType') !== CMS_OID.envelopedData) throw new CmsError('ContentInfo.contentType is not id-envelopedData');
  const env = expect(expect(top.children[1], 0xa0, 'ContentInfo.content').children[0], 0x30, 'EnvelopedData');
  let i = 0;
  const version = smallInt(env.children[i++], 'EnvelopedData.version');
  if (version !== 2) throw new CmsError(`EnvelopedData.version is ${version}, expected 2`);
  if (env.children[i]?.tag === 0xa0) i++; // originatorInfo, ignored
  const ris = expect(env.children[i++], TAG.SET, 'recipientInfos');
  if (ris.children.length !== 1) throw new CmsError(`recipientInfos holds ${ris.children.length} entries, expected 1`);
  const ktri = expect(ris.children[0], 0x30, 'KeyTransRecipientInfo');
  const kv = smallInt(ktri.children[0], 'KeyTransRecipientInfo.version');
  if (kv !== 2) throw new CmsError(`KeyTransRecipientInfo.version is ${kv}, expected 2 (subjectKeyIdentifier)`);
  const rid = ktri.children[1];
  if (!rid || rid.tag !== 0x80) throw new CmsError('KeyTransRecipientInfo.rid is not [0] subjectKeyIdentifier');
  const alg = expect(ktri.children[2], 0x30, 'keyEncryptionAlgorithm');
  if (oidOf(alg.children[0], 'keyEncryptionAlgorithm') !== CMS_OID.rsaesOaep) throw new CmsError('keyEncryptionAlgorithm is not rsaesOaep');
  checkOaepParameters(alg.children[1]);
  const encryptedKey = berStringBytes(expect(ktri.children[3], TAG.OCTET_STRING, 'encryptedKey'), TAG.OCTET_STRING, 'encryptedKey');
  const eci = expect(env.children[i++], 0x30, 'EncryptedContentInfo');
  if (oidOf(eci.children[0], 'EncryptedContentInfo.contentType') !== CMS_OID.data) throw new CmsError('EncryptedContentInfo.contentType is not id-data');
  const cea = expect(eci.children[1], 0x30, 'contentEncryptionAlgorithm');
  if (oidOf(cea.children[0], 'contentEncryptionAlgorithm') !== CMS_OID.aes256Cbc) throw new CmsError('contentEncryptionAlgorithm is not aes256-CBC');
  const iv = berStringBytes(expect(cea.children[1], TAG.OCTET_STRING, 'AES-CBC IV'), TAG.OCTET_STRING, 'AES-CBC IV');
  if (iv.length !== 16) throw new CmsError(`the AES-CBC IV is ${iv.length} bytes, expected 16`);
  const ec = eci.children[2];
  if (!ec || (ec.tag & 0xdf) !== 0x80) throw new CmsError('encryptedContent [0] is missing');
  const encryptedContent = ec.constructed ? berStringBytes(ec, TAG.OCTET_STRING, 'encryptedContent') : ec.value;
  if (encryptedContent.length === 0 || encryptedContent.length % 16 !== 0) throw new CmsError(`encryptedContent is ${encryptedContent.length} bytes, not a positive multiple of 16`);
  return { subjectKeyIdentifier: rid.value, encryptedKey, iv, encryptedContent };
}

/** The recipient's private key: a WebCrypto RSA-OAEP/SHA-256 key, PKCS#8 DER, or PKCS#8 PEM text. */
export type RecipientPrivateKey = CryptoKey | Uint8Array | string;

async function privateKey(key: RecipientPrivateKey): Promise<CryptoKey> {
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) return key;
  const pkcs8 = typeof key === 'string' ? pemDecode(key, 'PRIVATE KEY') : key;
  try {
    return await subtle().importKey('pkcs8', view(pkcs8), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
  } catch (e) {
    throw new CmsError(`the private key is not an RSA PKCS#8 key (${(e as Error).message})`);
  }
}

/**
 * Enclave side: decrypts a CiphertextForRecipient with the RSA private key whose public half
 * was in the attestation document, and returns the plaintext (the data key, random bytes, or
 * the decrypted ciphertext). Throws {@link CmsError}.
 */
export async function decryptCiphertextForRecipient(bytes: Uint8Array, key: RecipientPrivateKey): Promise<Uint8Array> {
  const env = parseCiphertextForRecipient(bytes);
  const s = subtle();
  const rsa = await privateKey(key);
  let cek: ArrayBuffer;
  try {
    cek = await s.decrypt({ name: 'RSA-OAEP' }, rsa, view(env.encryptedKey));
  } catch {
    throw new CmsError('RSA-OAEP decryption of encryptedKey failed: the envelope was made for another key');
  }
  if (cek.byteLength !== 32) throw new CmsError(`the content-encryption key is ${cek.byteLength} bytes, expected 32 (AES-256)`);
  const aes = await s.importKey('raw', cek, { name: 'AES-CBC' }, false, ['decrypt']);
  try {
    return new Uint8Array(await s.decrypt({ name: 'AES-CBC', iv: view(env.iv) }, aes, view(env.encryptedContent)));
  } catch {
    throw new CmsError('AES-256-CBC decryption failed (bad padding)');
  }
}

/**
 * CiphertextForRecipient: our envelope has KMS's exact BER shape (the byte layout written out
 * from the spec by hand), openssl decrypts it, and our WebCrypto decryptor opens what openssl
 * itself produces (streamed BER with the content in several chunks).
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CmsError, buildCiphertextForRecipient, decryptCiphertextForRecipient, parseCiphertextForRecipient, parseRsaSpki } from '../src/index.js';
import { hex, unhex } from './helpers/hex.js';

const dir = mkdtempSync(join(tmpdir(), 'nsm-kms-cms-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = new Uint8Array(rsa.publicKey.export({ type: 'spki', format: 'der' }));
const pkcs8 = new Uint8Array(rsa.privateKey.export({ type: 'pkcs8', format: 'der' }));
writeFileSync(join(dir, 'key.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir });

describe('CiphertextForRecipient', () => {
  it('has the byte layout of KMS responses: indefinite outer layers, definite SET, 493 bytes for a 32-byte key', async () => {
    const dataKey = new Uint8Array(32).fill(7);
    const iv = unhex('000102030405060708090a0b0c0d0e0f');
    const cms = await buildCiphertextForRecipient(spki, dataKey, { iv, cek: new Uint8Array(32).fill(9) });
    expect(cms.length).toBe(493);
    const ski = createHash('sha256').update(spki).digest('hex');
    const head =
      '3080' + '06092a864886f70d010703' + 'a080' + '3080' + '020102' + '3182016b' + '30820167' + '020102' + '8020' + ski +
      '303c' + '06092a864886f70d010107' + '302f' + 'a00f' + '300d' + '0609608648016503040201' + '0500' +
      'a11c' + '301a' + '06092a864886f70d010108' + '300d' + '0609608648016503040201' + '0500' + '04820100';
    expect(hex(cms.subarray(0, head.length / 2))).toBe(head);
    const tailStart = head.length / 2 + 256;
    const tail = '3080' + '06092a864886f70d010701' + '301d' + '060960864801650304012a' + '0410' + hex(iv) + 'a080' + '0430';
    expect(hex(cms.subarray(tailStart, tailStart + tail.length / 2))).toBe(tail);
    expect(hex(cms.subarray(cms.length - 10))).toBe('00000000000000000000'); // [0], ECI, EnvelopedData, [0], ContentInfo
    // The content is AES-256-CBC with PKCS#7 padding: 32 bytes + a full block of 0x10.
    const body = cms.subarray(tailStart + tail.length / 2, tailStart + tail.length / 2 + 48);
    const aes = execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-nopad', '-K', '09'.repeat(32), '-iv', hex(iv)], { input: body });
    expect(hex(new Uint8Array(aes))).toBe('07'.repeat(32) + '10'.repeat(16));
  });

  it('openssl cms -decrypt opens it, and openssl reads the same structure', async () => {
    const secret = new TextEncoder().encode('x'.repeat(1000));
    const cms = await buildCiphertextForRecipient(spki, secret);
    writeFileSync(join(dir, 'ours.der'), cms);
    expect(new Uint8Array(openssl('cms', '-decrypt', '-inform', 'DER', '-binary', '-inkey', 'key.pem', '-in', 'ours.der'))).toEqual(secret);
    const printed = openssl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', 'ours.der').toString();
    expect(printed).toMatch(/contentType: pkcs7-envelopedData/);
    expect(printed).toMatch(/algorithm: rsaesOaep/);
    expect(printed).toMatch(/algorithm: aes-256-cbc/);
    expect(printed).toMatch(/subjectKeyIdentifier:/);
    expect(await decryptCiphertextForRecipient(cms, pkcs8)).toEqual(secret);
  });

  it('decrypts what openssl produces: streamed BER, chunked content, sha256 identifiers without NULL parameters', async () => {
    openssl('req', '-x509', '-new', '-key', 'key.pem', '-subj', '/CN=recipient', '-days', '1', '-out', 'cert.pem');
    const plain = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
    writeFileSync(join(dir, 'plain.bin'), plain);
    openssl('cms', '-encrypt', '-binary', '-aes-256-cbc', '-recip', 'cert.pem', '-keyid', '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256', '-outform', 'DER', '-stream', '-in', 'plain.bin', '-out', 'theirs.der');
    const theirs = new Uint8Array(readFileSync(join(dir, 'theirs.der')));
    expect(hex(theirs.subarray(0, 2))).toBe('3080');
    expect(await decryptCiphertextForRecipient(theirs, pkcs8)).toEqual(plain);
  });

  it('refuses RSA-OAEP with SHA-1 (openssl default) by naming the parameter', async () => {
    openssl('req', '-x509', '-new', '-key', 'key.pem', '-subj', '/CN=recipient', '-days', '1', '-out', 'cert1.pem');
    writeFileSync(join(dir, 'p.bin'), 'abc');
    openssl('cms', '-encrypt', '-binary', '-aes-256-cbc', '-recip', 'cert1.pem', '-keyid', '-keyopt', 'rsa_padding_mode:oaep', '-outform', 'DER', '-in', 'p.bin', '-out', 'sha1.der');
    await expect(decryptCiphertextForRecipient(new Uint8Array(readFileSync(join(dir, 'sha1.der'))), pkcs8)).rejects.toThrow(/hashFunc is not sha256|RSAES-OAEP-params are missing/);
  });

  it('the wrong private key, and every truncation, give a CmsError (never anything else)', async () => {
    const cms = await buildCiphertextForRecipient(spki, new Uint8Array(32));
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await expect(decryptCiphertextForRecipient(cms, other)).rejects.toThrow(/made for another key/);
    for (let n = 0; n < cms.length; n += 7) {
      expect(() => parseCiphertextForRecipient(cms.subarray(0, n))).toThrow(CmsError);
    }
    const flipped = cms.slice();
    flipped[cms.length - 20]! ^= 0xff; // inside the last ciphertext block: padding no longer valid (or wrong bytes)
    const r = await decryptCiphertextForRecipient(flipped, pkcs8).then(
      (p) => p,
      (e: unknown) => e,
    );
    expect(r instanceof CmsError || (r instanceof Uint8Array && hex(r) !== '00'.repeat(32))).toBe(true);
  });

  it('the recipient key must be RSA 2048/3072/4096: EC and small RSA keys are named', () => {
    const ec = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'der' }));
    expect(() => parseRsaSpki(ec)).toThrow(/an EC key/);
    const small = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' }));
    expect(() => parseRsaSpki(small)).toThrow(/RSA-1024/);
    expect(parseRsaSpki(spki).modulusBits).toBe(2048);
    expect(() => parseRsaSpki(new Uint8Array([1, 2, 3]))).toThrow(/not a DER SubjectPublicKeyInfo/);
  });
});

/**
 * The two ECDSA verifiers of the EIF signature check, @noble/curves (the default) and
 * node:crypto (what the CLI and bootProfileFromEifFile use), against the committed signed EIF
 * vector and against signatures OpenSSL's command-line tool made: both accept what is valid
 * (high-S too) and reject what is tampered, a wrong key, or a point off the curve.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type EcdsaVerifier, decodeCoseSign1, nobleEcdsaVerifier, sigStructure, verifyCoseSign1 } from '../src/eif/cose-sign1.js';
import { parseCertificate } from '../src/eif/certificate.js';
import { checkEifSignature, describeEif, describeEifText, measureEif } from '../src/eif/index.js';
import { nodeEcdsaVerifier } from '../src/node/ecdsa-verifier.js';
import { measureEifFile } from '../src/node/eif-file.js';
import { loadNistCurves } from '../src/x509/nist-curves.js';
import { certificateDerFromPem } from '../src/eif/certificate.js';
import type { EcCurve } from '../src/x509/oids.js';

const dir = new URL('../vectors/eif/synthetic/', import.meta.url);
const read = (p: string) => new Uint8Array(readFileSync(new URL(p, dir)));
const verifiers: Array<[string, EcdsaVerifier]> = [
  ['noble', nobleEcdsaVerifier],
  ['node:crypto', nodeEcdsaVerifier],
];
const ORDER: Record<EcCurve, bigint> = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  'P-521': 0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};
const flip = (b: Uint8Array, i: number) => b.map((x, j) => (j === i ? x ^ 1 : x));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** r || (n - s): the same signature with the other S, which both must accept (lowS: false, as AWS). */
function highS(curve: EcCurve, sig: Uint8Array): Uint8Array {
  const size = sig.length / 2;
  const s = BigInt('0x' + toHex(sig.subarray(size)));
  const out = sig.slice();
  out.set(Buffer.from((ORDER[curve] - s).toString(16).padStart(size * 2, '0'), 'hex'), size);
  return out;
}

/** r || s from an OpenSSL DER Ecdsa-Sig-Value. */
function rawSignature(derSig: Uint8Array, size: number): Uint8Array {
  let o = 2;
  if (derSig[1]! & 0x80) o += derSig[1]! & 0x7f;
  const out = new Uint8Array(2 * size);
  for (let k = 0; k < 2; k++) {
    const len = derSig[o + 1]!;
    let v = derSig.subarray(o + 2, o + 2 + len);
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    out.set(v, (k + 1) * size - v.length);
    o += 2 + len;
  }
  return out;
}

beforeAll(async () => {
  await loadNistCurves();
});

describe('the signed EIF vector', () => {
  const cose = decodeCoseSign1(read('v4_cose_sign1.bin'));
  const cert = parseCertificate(certificateDerFromPem(new TextDecoder().decode(read('signing_cert.pem')))!);
  const key = cert.publicKey!;
  const message = sigStructure(cose.protectedBytes, cose.payload);

  test('OpenSSL verifies its COSE signature with the certificate key (the reference)', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nsm-eif-verifier-'));
    try {
      writeFileSync(join(tmp, 'cert.pem'), read('signing_cert.pem'));
      const pub = execFileSync('openssl', ['x509', '-in', join(tmp, 'cert.pem'), '-noout', '-pubkey']);
      writeFileSync(join(tmp, 'pub.pem'), pub);
      writeFileSync(join(tmp, 'msg'), message);
      const size = cose.signature.length / 2;
      const derInt = (b: Uint8Array) => {
        let v = Buffer.from(b);
        while (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) v = v.subarray(1);
        if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
        return Buffer.concat([Buffer.from([2, v.length]), v]);
      };
      const body = Buffer.concat([derInt(cose.signature.subarray(0, size)), derInt(cose.signature.subarray(size))]);
      writeFileSync(join(tmp, 'sig'), Buffer.concat([Buffer.from([0x30, body.length]), body]));
      const out = execFileSync('openssl', ['dgst', '-sha384', '-verify', join(tmp, 'pub.pem'), '-signature', join(tmp, 'sig'), join(tmp, 'msg')]).toString();
      expect(out.trim()).toBe('Verified OK');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test.each(verifiers)('%s accepts it, with high S too, and rejects every tampered byte', (_name, verify) => {
    expect(key.curve).toBe('P-384');
    expect(verify(key.curve, key.point, message, cose.signature)).toBe(true);
    expect(verify(key.curve, key.point, message, highS(key.curve, cose.signature))).toBe(true);
    for (let i = 0; i < cose.signature.length; i += 7) expect(verify(key.curve, key.point, message, flip(cose.signature, i))).toBe(false);
    for (const i of [0, 5, message.length - 1]) expect(verify(key.curve, key.point, flip(message, i), cose.signature)).toBe(false);
    expect(verify(key.curve, flip(key.point, 20), message, cose.signature)).toBe(false); // off the curve
    expect(() => verifyCoseSign1(cose, key, verify)).not.toThrow();
    expect(() => verifyCoseSign1({ ...cose, signature: flip(cose.signature, 3) }, key, verify)).toThrow(expect.objectContaining({ code: 'BAD_SIGNATURE' }));
  });

  test('describe-eif reads the same with either verifier, and measuring with a verifier given does not need noble', async () => {
    const image = read('v4_signed.eif');
    const now = new Date('2030-01-01T00:00:00Z');
    const m = await measureEif(image, { signatureVerifier: nodeEcdsaVerifier });
    const a = describeEif(m, now);
    const b = describeEif(m, now, nodeEcdsaVerifier);
    expect(describeEifText(b)).toBe(describeEifText(a));
    expect(b.signature!.signatureValid && b.signature!.pcr0Matches).toBe(true);
    const fromFile = await measureEifFile(new URL('v4_signed.eif', dir).pathname, { signatureVerifier: nodeEcdsaVerifier });
    expect(checkEifSignature(fromFile, now, nodeEcdsaVerifier)!.signatureError).toBeNull();
  });
});

describe.each([
  ['P-256', 'prime256v1', 'sha256', 32],
  ['P-384', 'secp384r1', 'sha384', 48],
  ['P-521', 'secp521r1', 'sha512', 66],
] as const)('%s signatures made by OpenSSL', (curve, name, hash, size) => {
  test.each(verifiers)('%s agrees', (_label, verify) => {
    const tmp = mkdtempSync(join(tmpdir(), 'nsm-eif-verifier-'));
    try {
      const keyFile = join(tmp, 'key.pem');
      execFileSync('openssl', ['ecparam', '-name', name, '-genkey', '-noout', '-out', keyFile]);
      const spkiDer = new Uint8Array(execFileSync('openssl', ['ec', '-in', keyFile, '-pubout', '-outform', 'DER'], { stdio: ['ignore', 'pipe', 'ignore'] }));
      const point = spkiDer.subarray(spkiDer.length - (2 * size + 1));
      expect(point[0]).toBe(4);
      const message = new TextEncoder().encode(`Signature1 test message for ${curve}`);
      writeFileSync(join(tmp, 'msg'), message);
      const sig = rawSignature(new Uint8Array(execFileSync('openssl', ['dgst', `-${hash}`, '-sign', keyFile, join(tmp, 'msg')])), size);
      expect(verify(curve, point, message, sig)).toBe(true);
      expect(verify(curve, point, message, highS(curve, sig))).toBe(true);
      expect(verify(curve, point, flip(message, 0), sig)).toBe(false);
      expect(verify(curve, point, message, flip(sig, size + 1))).toBe(false);
      expect(verify(curve, point, message, new Uint8Array(2 * size))).toBe(false); // r = s = 0
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

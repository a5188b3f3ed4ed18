// src/x509 against openssl, and the choices the differential test cannot show: every real AWS
// certificate and ours read field by field as `openssl x509` prints them; OID arcs beyond 2^53
// as `openssl asn1parse` prints them; issuer names matched byte for byte (a name equal only under
// RFC 5280 7.1 is refused, where openssl accepts it); and inputs that once broke the parser
// (200 KB strings, 32,000 extensions, bad UniversalString code points) read or refused cleanly.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationVerifyError,
  encodeCoseSign1,
  encodePayload,
  sigStructure,
  verifyAttestationDocument,
} from '../src/attestation/index.js';
import { type IssuedCert, instanceName, issueCertificate, leafName } from '../src/attestation/chain-profile.js';
import { nobleBackend } from '../src/attestation/p384.js';
import { parseCertificate } from '../src/x509/certificate.js';
import { der, derOctetString, derOid, derSequence, derString } from '../src/x509/der-write.js';
import { DerError, TAG } from '../src/x509/der.js';
import { NAME_OIDS } from '../src/x509/oids.js';
import { pemDecode, pemEncode } from '../src/x509/pem.js';
import { readEcPrivateKey, readPkcs8 } from '../src/x509/private-key.js';
import { encodePkcs8 } from '../src/attestation/pkcs8.js';
import { cons, encodeTree, oidBytes, parseTree, prim } from './helpers/der-tree.js';
import { OPENSSL_X509_ARGS, asOpensslPrints, opensslBlocks } from './helpers/openssl-x509.js';
import { S, T, awsCertificates, seededChain } from './helpers/x509-chains.js';

const OPENSSL = process.env.OPENSSL ?? 'openssl';
const opensslReason = spawnSync(OPENSSL, ['version']).status === 0 ? null : `'${OPENSSL}' was not found (.ci/run installs openssl)`;
if (opensslReason) console.warn(`x509 openssl cross-checks SKIPPED: ${opensslReason}`);

let chain: IssuedCert[];
let dir: string;
beforeAll(async () => {
  chain = await seededChain(3, 4, 'x509-test');
  dir = mkdtempSync(join(tmpdir(), 'nsm-x509-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(opensslReason !== null)('src/x509 against openssl', () => {
  it('reads every real AWS certificate and ours as `openssl x509` prints them', async () => {
    const certs = [...awsCertificates(), ...chain.map((c) => ({ name: `ours ${c.level}`, der: c.der }))];
    expect(certs.length).toBe(27 + 5);
    for (const c of certs) {
      const r = spawnSync(OPENSSL, OPENSSL_X509_ARGS, { input: c.der, encoding: 'utf8' });
      expect({ cert: c.name, status: r.status }).toEqual({ cert: c.name, status: 0 });
      expect({ cert: c.name, blocks: opensslBlocks(asOpensslPrints(c.der)) }).toEqual({ cert: c.name, blocks: opensslBlocks(r.stdout) });
    }
  });

  it('reads OID arcs beyond 2^53 and 2^64 exactly as `openssl asn1parse` prints them', () => {
    for (const dotted of ['1.3.6.1.4.1.9007199254740993', '1.3.6.1.4.1.18446744073709551617.5', '2.999.1', '2.100000000000000000000.3']) {
      const tree = parseTree(chain[4]!.der);
      const exts = tree.kids![0]!.kids!.find((k) => k.tag === 0xa3)!.kids![0]!;
      exts.kids!.push(cons(0x30, prim(0x06, oidBytes(dotted)), prim(0x04, [0x05, 0x00])));
      const certDer = encodeTree(tree);
      const ours = parseCertificate(certDer).extensions.at(-1)!.oid;
      const r = spawnSync(OPENSSL, ['asn1parse', '-inform', 'DER'], { input: encodeTree(prim(0x06, oidBytes(dotted))), encoding: 'utf8' });
      expect(r.stdout).toMatch(/OBJECT\s+:(\S+)/);
      expect({ dotted, ours }).toEqual({ dotted, ours: /OBJECT\s+:(\S+)/.exec(r.stdout)![1] });
    }
  });
});

// ---- issuer names: byte for byte --------------------------------------------------------------

/** A leaf whose issuer field is `issuerName` (bytes), signed by the instance key. */
async function leafWithIssuer(issuerName: Uint8Array): Promise<IssuedCert> {
  const instance = chain[3]!;
  return issueCertificate(
    {
      level: 'leaf',
      name: leafName('i-0123456789abcdef0-enc0123456789abcdef', 'us-east-1'),
      key: chain[4]!.key,
      issuer: { ...instance, subject: issuerName },
      serial: new Uint8Array(16).fill(0x12),
      notBefore: S - 3600,
      notAfter: S + 3600,
      region: 'us-east-1',
    },
    nobleBackend,
  );
}

async function verdictWithLeaf(leaf: IssuedCert): Promise<string> {
  const payload = encodePayload({
    moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
    timestamp: T,
    pcrs: [{ index: 0, data: new Uint8Array(48) }],
    certificate: leaf.der,
    cabundle: chain.slice(0, 4).map((c) => c.der),
    publicKey: null,
    userData: null,
    nonce: null,
  });
  const doc = encodeCoseSign1(payload, await nobleBackend.sign(leaf.key, sigStructure(payload)));
  try {
    await verifyAttestationDocument(doc, { root: chain[0]!.der, time: T, crypto: 'noble' });
    return 'accepted';
  } catch (e) {
    if (e instanceof AttestationVerifyError) return e.rule;
    throw e;
  }
}

function opensslVerifies(leaf: IssuedCert): boolean {
  writeFileSync(join(dir, 'root.pem'), pemEncode('CERTIFICATE', chain[0]!.der));
  writeFileSync(join(dir, 'bundle.pem'), chain.slice(1, 4).map((c) => pemEncode('CERTIFICATE', c.der)).join(''));
  writeFileSync(join(dir, 'leaf.pem'), pemEncode('CERTIFICATE', leaf.der));
  const r = spawnSync(OPENSSL, ['verify', '-attime', String(S), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')], { encoding: 'utf8' });
  return r.status === 0;
}

/** The instance subject with one attribute's encoding replaced. */
function instanceNameWith(change: (type: string, value: string) => Uint8Array | null): Uint8Array {
  const rdns = instanceName('i-0123456789abcdef0', 'us-east-1').map(([type, value]) => {
    const atv = change(type, value) ?? derSequence(derOid(NAME_OIDS[type]), derString(type === 'C' ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING, value));
    return der(TAG.SET, atv);
  });
  return derSequence(...rdns);
}

describe('issuer names are matched byte for byte', () => {
  it('accepts the byte-identical name (the instance subject as encoded)', async () => {
    expect(await verdictWithLeaf(await leafWithIssuer(chain[3]!.subject))).toBe('accepted');
    expect(instanceNameWith(() => null)).toEqual(chain[3]!.subject);
  });

  it('refuses names equal only under RFC 5280 7.1 (case, spaces, string type), which openssl accepts', async () => {
    const variants: Record<string, Uint8Array> = {
      'CN in upper case': instanceNameWith((t, v) => (t === 'CN' ? derSequence(derOid(NAME_OIDS.CN), derString(TAG.UTF8_STRING, v.toUpperCase())) : null)),
      'L with leading and trailing spaces': instanceNameWith((t) => (t === 'L' ? derSequence(derOid(NAME_OIDS.L), derString(TAG.UTF8_STRING, ' Seattle ')) : null)),
      'C as UTF8String': instanceNameWith((t, v) => (t === 'C' ? derSequence(derOid(NAME_OIDS.C), derString(TAG.UTF8_STRING, v)) : null)),
    };
    for (const [what, name] of Object.entries(variants)) {
      const leaf = await leafWithIssuer(name);
      expect({ what, rule: await verdictWithLeaf(leaf) }).toEqual({ what, rule: 'chain.issuer' });
      if (!opensslReason) expect({ what, openssl: opensslVerifies(leaf) }).toEqual({ what, openssl: true });
    }
  });

  it('refuses a different name, as openssl does', async () => {
    const leaf = await leafWithIssuer(instanceNameWith((t) => (t === 'CN' ? derSequence(derOid(NAME_OIDS.CN), derString(TAG.UTF8_STRING, 'someone else')) : null)));
    expect(await verdictWithLeaf(leaf)).toBe('chain.issuer');
    if (!opensslReason) expect(opensslVerifies(leaf)).toBe(false);
  });
});

// ---- inputs that once broke the parser --------------------------------------------------------

/** Our leaf with its extensions replaced by `exts` (not re-signed: parsing only). */
function leafWithExtensions(exts: Uint8Array[]): Uint8Array {
  const tree = parseTree(chain[4]!.der);
  const list = tree.kids![0]!.kids!.find((k) => k.tag === 0xa3)!.kids![0]!;
  list.kids = exts.map((e) => parseTree(e));
  return encodeTree(tree);
}

describe('robustness', () => {
  it('reads 32,000 extensions and finds a duplicate among them (the check is a set lookup, not a scan)', () => {
    const ext = (i: number) => derSequence(derOid(`1.3.6.1.4.1.99999.${i}`), derOctetString(new Uint8Array([5, 0])));
    const many = Array.from({ length: 32_000 }, (_, i) => ext(i));
    expect(parseCertificate(leafWithExtensions(many)).extensions).toHaveLength(32_000);
    expect(() => parseCertificate(leafWithExtensions([...many, ext(17)]))).toThrow(/extension 1\.3\.6\.1\.4\.1\.99999\.17 appears twice/);
  });

  it('reads 200 KB string attributes of every byte-oriented type without overflowing the stack', () => {
    for (const tag of [TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.IA5_STRING, TAG.T61_STRING]) {
      const tree = parseTree(chain[4]!.der);
      const subject = tree.kids![0]!.kids![5]!;
      subject.kids!.at(-1)!.kids![0]!.kids![1] = prim(tag, new Uint8Array(200_000).fill(0x61));
      const c = parseCertificate(encodeTree(tree));
      expect(c.subjectAttributes.at(-1)!.value).toHaveLength(200_000);
    }
  });

  it('refuses bad UniversalString and BMPString contents with a DerError (never a RangeError)', () => {
    for (const [tag, bytes] of [
      [TAG.UNIVERSAL_STRING, [0x00, 0x11, 0x00, 0x00]],
      [TAG.UNIVERSAL_STRING, [0xff, 0xff, 0xff, 0xff]],
      [TAG.UNIVERSAL_STRING, [0x00, 0x00, 0xd8, 0x00]],
      [TAG.UNIVERSAL_STRING, [0x00, 0x00, 0x61]],
      [TAG.BMP_STRING, [0x00]],
      [TAG.BMP_STRING, [0xdc, 0x00]],
    ] as const) {
      const tree = parseTree(chain[4]!.der);
      tree.kids![0]!.kids![5]!.kids!.at(-1)!.kids![0]!.kids![1] = prim(tag, [...bytes]);
      expect(() => parseCertificate(encodeTree(tree))).toThrow(DerError);
    }
  });
});

function errorName(f: () => unknown): string {
  try {
    f();
    return 'none';
  } catch (e) {
    return (e as Error).name;
  }
}

// ---- private keys: as strict as certificates ---------------------------------------------------

describe('private keys', () => {
  it('reads openssl-made PKCS#8 and SEC1 keys, and refuses extra, missing or reordered fields', () => {
    const keys: Uint8Array[] = [];
    if (!opensslReason) {
      const pkcs8 = spawnSync(OPENSSL, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], { encoding: 'utf8' });
      const sec1Der = spawnSync(OPENSSL, ['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-outform', 'DER']);
      expect([pkcs8.status, sec1Der.status]).toEqual([0, 0]);
      keys.push(pemDecode(pkcs8.stdout, 'PRIVATE KEY'), new Uint8Array(sec1Der.stdout));
      const p8 = readPkcs8(keys[0]!);
      expect(p8.curve).toBe('1.3.132.0.34');
      expect(readEcPrivateKey(p8.privateKey).secret).toHaveLength(48);
      const sec1 = readEcPrivateKey(keys[1]!);
      expect(sec1.curve).toBe('1.3.132.0.34');
      expect(sec1.publicKey).toHaveLength(97);
    }
    const p8 = encodePkcs8(chain[4]!.key);
    expect(readPkcs8(p8).curve).toBe('1.3.132.0.34');
    type Tree = ReturnType<typeof parseTree>;
    const variants: Record<string, (t: Tree) => unknown> = {
      'trailing element': (t) => t.kids!.push(prim(0x05, [])),
      'version 2': (t) => (t.kids![0] = prim(0x02, [2])),
      'algorithm with three elements': (t) => t.kids![1]!.kids!.push(prim(0x05, []), prim(0x05, [])),
      'privateKey missing': (t) => t.kids!.splice(2, 1),
    };
    for (const [what, change] of Object.entries(variants)) {
      const t = parseTree(p8);
      change(t);
      expect({ what, error: errorName(() => readPkcs8(encodeTree(t))) }).toEqual({ what, error: 'DerError' });
    }
    const inner = parseTree(readPkcs8(p8).privateKey);
    const ecVariants = {
      'version 2': (t: typeof inner) => (t.kids![0] = prim(0x02, [2])),
      'publicKey before parameters': (t: typeof inner) => t.kids!.push(cons(0xa0, prim(0x06, oidBytes('1.3.132.0.34')))),
      'trailing element': (t: typeof inner) => t.kids!.push(prim(0x05, [])),
    };
    for (const [what, change] of Object.entries(ecVariants)) {
      const t = structuredClone(inner);
      change(t);
      expect({ what, error: errorName(() => readEcPrivateKey(encodeTree(t))) }).toEqual({ what, error: 'DerError' });
    }
  });
});

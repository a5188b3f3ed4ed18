// The crafted-certificate corpus of the x509 differential test: targeted mutations (one per
// rule of DER and RFC 5280 that src/x509 and the verifier enforce, plus valid variants that
// must still be read) of real AWS certificates and of ours, and seeded random mutations. Each
// crafted certificate says which base it came from and what was done. Built in memory on every
// run (nothing is committed), deterministic for a given seed.
import { type Node, clone, concat, cons, encodeTree, hexOf, oidBytes, parseTree, prim, rawNode } from './der-tree.js';

export interface Crafted {
  /** `<base>/<kind>` (random ones: `<base>/random-<n>-<what>`). */
  readonly id: string;
  readonly base: string;
  readonly kind: string;
  readonly der: Uint8Array;
  /** The mutated TBSCertificate needs a new signature to make a fully signed certificate. */
  readonly resign: boolean;
}

const h = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const SEQ = 0x30;
const SET = 0x31;
const NULL = () => prim(0x05, []);
const oid = (dotted: string) => prim(0x06, oidBytes(dotted));
const utf8 = (s: string) => prim(0x0c, Buffer.from(s, 'utf8'));
const bool = (b: number[]) => prim(0x01, b);
const octets = (n: Node) => prim(0x04, encodeTree(n));

const OID_BC = '2.5.29.19';
const OID_KU = '2.5.29.15';
const OID_SKI = '2.5.29.14';
const OID_AKI = '2.5.29.35';
const OID_CDP = '2.5.29.31';
const ECDSA_SHA384 = '2a8648ce3d040303';

// Positions in a v3 TBSCertificate with extensions (every base certificate is one).
const VERSION = 0;
const SERIAL = 1;
const SIGALG = 2;
const ISSUER = 3;
const VALIDITY = 4;
const SUBJECT = 5;
const SPKI = 6;

const tbsOf = (c: Node) => c.kids![0]!;
const extList = (c: Node): Node[] => tbsOf(c).kids!.find((k) => k.tag === 0xa3)!.kids![0]!.kids!;
const extOid = (e: Node) => hexOf(e.kids![0]!.value!);
const findExt = (c: Node, dotted: string) => extList(c).find((e) => extOid(e) === hexOf(oidBytes(dotted)));
const extValue = (e: Node) => parseTree(e.kids!.at(-1)!.value!);
const setExtValue = (e: Node, v: Node | Uint8Array) => {
  e.kids!.at(-1)!.value = v instanceof Uint8Array ? v : encodeTree(v);
};
const isCritical = (e: Node) => e.kids!.length === 3;
const isCa = (c: Node) => {
  const bc = findExt(c, OID_BC);
  return !!bc && extValue(bc).kids!.length > 0;
};
function addExt(c: Node, dotted: string, critical: boolean | number[], value: Node | Uint8Array): void {
  const v = value instanceof Uint8Array ? prim(0x04, value) : octets(value);
  const flag = critical === false ? [] : [bool(critical === true ? [0xff] : critical)];
  extList(c).push(cons(SEQ, oid(dotted), ...flag, v));
}
function setKu(c: Node, bitstring: string): void {
  const e = findExt(c, OID_KU);
  if (e) setExtValue(e, h(bitstring));
  else addExt(c, OID_KU, true, h(bitstring));
}
function setBc(c: Node, value: Node | Uint8Array): void {
  setExtValue(findExt(c, OID_BC)!, value);
}
/** The CN attribute value of the subject (every base certificate has one). */
function subjectCn(c: Node): Node {
  for (const rdn of tbsOf(c).kids![SUBJECT]!.kids!) for (const atv of rdn.kids!) if (hexOf(atv.kids![0]!.value!) === '550403') return atv;
  throw new Error('no CN');
}
/** Pads the first multi-octet subidentifier (or the first one) of OID contents with 80. */
function padOid(v: Uint8Array, at = 1): Uint8Array {
  return concat([v.subarray(0, at), new Uint8Array([0x80]), v.subarray(at)]);
}
const bothSigAlgs = (c: Node, f: (n: Node) => void) => {
  f(c.kids![1]!);
  f(tbsOf(c).kids![SIGALG]!);
};
const cdpValue = (uri: string) => cons(SEQ, cons(SEQ, cons(0xa0, cons(0xa0, prim(0x86, Buffer.from(uri))))));
function setCdp(c: Node, value: Node | Uint8Array, critical = false): void {
  const e = findExt(c, OID_CDP);
  if (e) {
    setExtValue(e, value);
    if (critical && !isCritical(e)) e.kids!.splice(1, 0, bool([0xff]));
  } else addExt(c, OID_CDP, critical, value);
}

type Mutator = (c: Node) => boolean | void;

/** Targeted mutations: kind -> change (return false when it does not apply to this base). */
export const TARGETED: Record<string, Mutator> = {
  // ---- the critical flag and other BOOLEANs
  'crit-ber-true': (c) => { const e = extList(c).find(isCritical); if (!e) return false; e.kids![1]!.value = h('01'); },
  'crit-empty': (c) => { const e = extList(c).find(isCritical); if (!e) return false; e.kids![1]!.value = new Uint8Array(0); },
  'crit-two-octets': (c) => { const e = extList(c).find(isCritical); if (!e) return false; e.kids![1]!.value = h('ffff'); },
  'crit-false-encoded': (c) => { const e = extList(c).find((x) => !isCritical(x)); if (!e) return false; e.kids!.splice(1, 0, bool([0])); },
  'crit-unknown': (c) => addExt(c, '1.3.6.1.4.1.99999.1', true, NULL()),
  'crit-unknown-ber-true': (c) => addExt(c, '1.3.6.1.4.1.99999.1', [0x01], NULL()),
  'noncrit-unknown': (c) => addExt(c, '1.3.6.1.4.1.99999.1', false, NULL()),
  // ---- the extensions list
  'ext-second-sequence': (c) => { tbsOf(c).kids!.find((k) => k.tag === 0xa3)!.kids!.push(cons(SEQ, cons(SEQ, oid('1.3.6.1.4.1.99999.2'), bool([0xff]), octets(NULL())))); },
  'ext-trailing-element': (c) => { extList(c)[0]!.kids!.push(NULL()); },
  'ext-trailing-critical-element': (c) => { extList(c)[0]!.kids!.push(cons(SEQ, oid('1.3.6.1.4.1.99999.3'), bool([0xff]), octets(NULL()))); },
  'ext-missing-value': (c) => { extList(c)[0]!.kids!.pop(); },
  'ext-value-not-octets': (c) => { extList(c)[0]!.kids!.at(-1)!.tag = 0x0c; },
  'ext-empty-list': (c) => { tbsOf(c).kids!.find((k) => k.tag === 0xa3)!.kids = [cons(SEQ)]; },
  'ext-empty-wrapper': (c) => { tbsOf(c).kids!.find((k) => k.tag === 0xa3)!.kids = []; },
  'ext-duplicate': (c) => { extList(c).push(clone(extList(c)[0]!)); },
  'ext-oid-padded': (c) => { const e = findExt(c, OID_BC)!; e.kids![0]!.value = padOid(e.kids![0]!.value!, 1); },
  // ---- basicConstraints
  'bc-ca-false-encoded': (c) => { if (isCa(c)) return false; setBc(c, cons(SEQ, bool([0]))); },
  'bc-ca-ber-true': (c) => { if (!isCa(c)) return false; const v = extValue(findExt(c, OID_BC)!); v.kids![0]!.value = h('01'); setBc(c, v); },
  'bc-pathlen-negative': (c) => { if (!isCa(c)) return false; setBc(c, cons(SEQ, bool([0xff]), prim(0x02, [0xff]))); },
  'bc-pathlen-nonminimal': (c) => { if (!isCa(c)) return false; setBc(c, cons(SEQ, bool([0xff]), prim(0x02, [0x00, 0x01]))); },
  'bc-extra-element': (c) => { const v = extValue(findExt(c, OID_BC)!); v.kids!.push(NULL()); setBc(c, v); },
  'bc-swapped': (c) => { if (!isCa(c)) return false; setBc(c, cons(SEQ, prim(0x02, [0x05]), bool([0xff]))); },
  'bc-trailing-bytes': (c) => { setBc(c, concat([encodeTree(extValue(findExt(c, OID_BC)!)), h('0500')])); },
  'bc-pathlen-without-ca': (c) => { if (isCa(c)) return false; setBc(c, cons(SEQ, prim(0x02, [0]))); },
  'bc-not-critical': (c) => { if (!isCa(c)) return false; findExt(c, OID_BC)!.kids!.splice(1, 1); },
  // ---- keyUsage
  'ku-keycertsign-in-unused-bits': (c) => setKu(c, '03020304'),
  'ku-unused-bits-set': (c) => setKu(c, '03020187'),
  'ku-trailing-zero-bits': (c) => setKu(c, '0303008600'),
  'ku-no-bits': (c) => setKu(c, '030100'),
  'ku-eight-unused': (c) => setKu(c, '03020880'),
  'ku-not-bitstring': (c) => setKu(c, '040186'),
  'ku-trailing-bytes': (c) => setKu(c, '030201860500'),
  'ku-no-keycertsign': (c) => { if (!isCa(c)) return false; setKu(c, '03020780'); },
  'ku-keycertsign-on-leaf': (c) => { if (isCa(c)) return false; setKu(c, '03020284'); },
  'ku-decipher-only': (c) => { if (isCa(c)) return false; setKu(c, '0303078080'); },
  // ---- object identifiers
  'oid-padded-signature-alg': (c) => bothSigAlgs(c, (a) => { a.kids![0]!.value = padOid(a.kids![0]!.value!, 1); }),
  'oid-padded-ec-public-key': (c) => { const a = tbsOf(c).kids![SPKI]!.kids![0]!; a.kids![0]!.value = padOid(a.kids![0]!.value!, 1); },
  'oid-padded-curve': (c) => { const a = tbsOf(c).kids![SPKI]!.kids![0]!; a.kids![1]!.value = padOid(a.kids![1]!.value!, 1); },
  'oid-padded-name-attribute': (c) => { const t = subjectCn(c).kids![0]!; t.value = padOid(t.value!, 1); },
  'oid-trailing-high-bit': (c) => bothSigAlgs(c, (a) => { a.kids![0]!.value = concat([a.kids![0]!.value!, h('80')]); }),
  'oid-empty-attribute-type': (c) => { subjectCn(c).kids![0]!.value = new Uint8Array(0); },
  'oid-arc-beyond-2^64': (c) => addExt(c, '1.3.6.1.4.1.18446744073709551617.5', false, NULL()),
  'oid-arc-2^28-1': (c) => addExt(c, '1.3.6.1.4.1.268435455.1', false, NULL()),
  'oid-arc-2^53+1': (c) => addExt(c, '1.3.6.1.4.1.9007199254740993', false, NULL()),
  'oid-first-arc-2-large': (c) => addExt(c, '2.999.1', false, NULL()),
  // ---- version
  'version-512': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0x02, 0x00])); },
  'version-v1-encoded': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0x00])); },
  'version-extra-element': (c) => { tbsOf(c).kids![VERSION]!.kids!.push(NULL()); },
  'version-4': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0x03])); },
  'version-negative': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0xff])); },
  'version-nonminimal': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0x00, 0x02])); },
  'version-absent-with-extensions': (c) => { tbsOf(c).kids!.splice(VERSION, 1); },
  'version-v2-with-extensions': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x02, [0x01])); },
  'version-not-integer': (c) => { tbsOf(c).kids![VERSION] = cons(0xa0, prim(0x04, [0x02])); },
  // ---- SubjectPublicKeyInfo
  'spki-extra-element': (c) => { tbsOf(c).kids![SPKI]!.kids!.push(NULL()); },
  'spki-missing-key': (c) => { tbsOf(c).kids![SPKI]!.kids!.pop(); },
  'spki-algorithm-extra-element': (c) => { tbsOf(c).kids![SPKI]!.kids![0]!.kids!.push(NULL()); },
  'spki-algorithm-no-curve': (c) => { tbsOf(c).kids![SPKI]!.kids![0]!.kids!.pop(); },
  'spki-unused-bits': (c) => {
    const k = tbsOf(c).kids![SPKI]!.kids![1]!;
    k.value = k.value!.slice();
    k.value[0] = 1;
    k.value[k.value.length - 1]! &= 0xfe;
  },
  'spki-point-off-curve': (c) => {
    const k = tbsOf(c).kids![SPKI]!.kids![1]!;
    k.value = k.value!.slice();
    k.value[k.value.length - 1]! ^= 1;
  },
  'spki-compressed-point': (c) => {
    const k = tbsOf(c).kids![SPKI]!.kids![1]!;
    const p = k.value!.subarray(2);
    k.value = concat([h('00'), new Uint8Array([2 | (p[95]! & 1)]), p.subarray(0, 48)]);
  },
  // ---- signature AlgorithmIdentifiers
  'sigalg-three-elements': (c) => bothSigAlgs(c, (a) => { a.kids!.push(NULL(), NULL()); }),
  'sigalg-null-parameters': (c) => bothSigAlgs(c, (a) => { a.kids!.push(NULL()); }),
  'sigalg-null-parameters-outer-only': (c) => { c.kids![1]!.kids!.push(NULL()); },
  'sigalg-tbs-sha256': (c) => { tbsOf(c).kids![SIGALG] = cons(SEQ, oid('1.2.840.10045.4.3.2')); },
  'sigalg-empty': (c) => bothSigAlgs(c, (a) => { a.kids = []; }),
  // ---- names
  'atv-three-elements': (c) => { subjectCn(c).kids!.push(utf8('x')); },
  'atv-one-element': (c) => { subjectCn(c).kids!.pop(); },
  'rdn-empty': (c) => { tbsOf(c).kids![SUBJECT]!.kids!.push(cons(SET)); },
  'rdn-multi-valued-unsorted': (c) => {
    const rdns = tbsOf(c).kids![SUBJECT]!.kids!;
    const a = rdns.pop()!.kids![0]!;
    const b = rdns.pop()!.kids![0]!;
    const [lo, hi] = Buffer.compare(Buffer.from(encodeTree(a)), Buffer.from(encodeTree(b))) < 0 ? [a, b] : [b, a];
    rdns.push(cons(SET, hi, lo));
  },
  'rdn-multi-valued-sorted': (c) => {
    const rdns = tbsOf(c).kids![SUBJECT]!.kids!;
    const a = rdns.pop()!.kids![0]!;
    const b = rdns.pop()!.kids![0]!;
    const [lo, hi] = Buffer.compare(Buffer.from(encodeTree(a)), Buffer.from(encodeTree(b))) < 0 ? [a, b] : [b, a];
    rdns.push(cons(SET, lo, hi));
  },
  'string-constructed-printable': (c) => { subjectCn(c).kids![1] = cons(0x33, prim(0x13, Buffer.from('x'))); },
  'string-printable-bad-char': (c) => { subjectCn(c).kids![1] = prim(0x13, Buffer.from('a@b')); },
  'string-utf8-invalid': (c) => { subjectCn(c).kids![1] = prim(0x0c, [0x61, 0xff]); },
  'string-universal-above-10ffff': (c) => { subjectCn(c).kids![1] = prim(0x1c, [0x00, 0x11, 0x00, 0x00]); },
  'string-universal-valid': (c) => { subjectCn(c).kids![1] = prim(0x1c, [0, 0, 0, 0x61, 0, 1, 0xf6, 0x00]); },
  'string-bmp-odd-length': (c) => { subjectCn(c).kids![1] = prim(0x1e, [0x00, 0x61, 0x00]); },
  'string-200k-utf8': (c) => { subjectCn(c).kids![1] = prim(0x0c, new Uint8Array(200_000).fill(0x61)); },
  'string-200k-printable': (c) => { subjectCn(c).kids![1] = prim(0x13, new Uint8Array(200_000).fill(0x61)); },
  'string-not-a-string': (c) => { subjectCn(c).kids![1] = prim(0x02, [0x05]); },
  'name-unknown-attribute-non-string': (c) => { tbsOf(c).kids![SUBJECT]!.kids!.push(cons(SET, cons(SEQ, oid('1.3.6.1.4.1.99999.9'), prim(0x02, [0x05])))); },
  'issuer-empty': (c) => { tbsOf(c).kids![ISSUER] = cons(SEQ); },
  // ---- unique identifiers
  'uid-issuer-present': (c) => { tbsOf(c).kids!.splice(SPKI + 1, 0, prim(0x81, [0x00, 0xab])); },
  'uid-repeated': (c) => { tbsOf(c).kids!.splice(SPKI + 1, 0, prim(0x81, [0x00, 0xab]), prim(0x81, [0x00, 0xab])); },
  'uid-reordered': (c) => { tbsOf(c).kids!.splice(SPKI + 1, 0, prim(0x82, [0x00, 0xab]), prim(0x81, [0x00, 0xab])); },
  'uid-unused-bits-set': (c) => { tbsOf(c).kids!.splice(SPKI + 1, 0, prim(0x81, [0x01, 0xab])); },
  // ---- serial numbers
  'serial-21-octets': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, [0x01, ...new Uint8Array(20).fill(0x22)]); },
  'serial-20-octets-top-bit': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, [0x00, ...new Uint8Array(20).fill(0x99)]); },
  'serial-zero': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, [0x00]); },
  'serial-negative': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, [0xff, 0x01]); },
  'serial-nonminimal': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, [0x00, 0x01]); },
  'serial-empty': (c) => { tbsOf(c).kids![SERIAL] = prim(0x02, []); },
  // ---- validity
  'time-generalized-before-2050': (c) => { const t = tbsOf(c).kids![VALIDITY]!.kids![0]!; t.tag = 0x18; t.value = concat([Buffer.from(Number(Buffer.from(t.value!.subarray(0, 2)).toString()) >= 50 ? '19' : '20'), t.value!]); },
  'time-no-seconds': (c) => { const t = tbsOf(c).kids![VALIDITY]!.kids![0]!; t.value = concat([t.value!.subarray(0, 10), h('5a')]); },
  'time-offset': (c) => { const t = tbsOf(c).kids![VALIDITY]!.kids![0]!; t.value = concat([t.value!.subarray(0, 12), Buffer.from('+0000')]); },
  'time-not-a-date': (c) => { const t = tbsOf(c).kids![VALIDITY]!.kids![0]!; t.value = Buffer.from('260230000000Z'); },
  'time-wrong-tag': (c) => { tbsOf(c).kids![VALIDITY]!.kids![0]!.tag = 0x13; },
  'validity-three-times': (c) => { const v = tbsOf(c).kids![VALIDITY]!; v.kids!.push(clone(v.kids![1]!)); },
  // ---- lengths, trailing data, structure
  'cert-trailing-byte': () => true, // applied to the bytes (below)
  'cert-extra-element': (c) => { c.kids!.push(NULL()); },
  'tbs-extra-element': (c) => { tbsOf(c).kids!.push(NULL()); },
  'length-nonminimal': (c) => { const s = tbsOf(c).kids![SERIAL]!; tbsOf(c).kids![SERIAL] = { tag: 0, raw: concat([h('0281'), new Uint8Array([s.value!.length]), s.value!]) }; },
  'length-indefinite': (c) => { const v = tbsOf(c).kids![VALIDITY]!; tbsOf(c).kids![VALIDITY] = { tag: 0, raw: concat([h('3080'), ...v.kids!.map(encodeTree), h('0000')]) }; },
  'signature-unused-bits': (c) => { const s = c.kids![2]!; s.value = s.value!.slice(); s.value[0] = 1; s.value[s.value.length - 1]! &= 0xfe; },
  // ---- authorityKeyIdentifier
  'aki-keyid-as-octet-string': (c) => { const e = findExt(c, OID_AKI); if (!e) return false; const v = extValue(e); v.kids![0]!.tag = 0x04; setExtValue(e, v); },
  'aki-keyid-constructed': (c) => { const e = findExt(c, OID_AKI); if (!e) return false; const v = extValue(e); v.kids![0] = cons(0xa0, prim(0x04, v.kids![0]!.value!)); setExtValue(e, v); },
  'aki-issuer-without-serial': (c) => { const e = findExt(c, OID_AKI); if (!e) return false; const v = extValue(e); v.kids!.push(cons(0xa1, cons(0xa4, clone(tbsOf(c).kids![ISSUER]!)))); setExtValue(e, v); },
  'aki-issuer-and-serial': (c) => { const e = findExt(c, OID_AKI); if (!e) return false; const v = extValue(e); v.kids!.push(cons(0xa1, cons(0xa4, clone(tbsOf(c).kids![ISSUER]!))), prim(0x82, [0x01, 0x02])); setExtValue(e, v); },
  'aki-trailing-element': (c) => { const e = findExt(c, OID_AKI); if (!e) return false; const v = extValue(e); v.kids!.push(NULL()); setExtValue(e, v); },
  // ---- cRLDistributionPoints
  'cdp-valid': (c) => setCdp(c, cdpValue('http://crl.example.invalid/x.crl')),
  'cdp-critical': (c) => setCdp(c, cdpValue('http://crl.example.invalid/x.crl'), true),
  'cdp-garbage': (c) => setCdp(c, h('0500')),
  'cdp-garbage-critical': (c) => setCdp(c, h('0500'), true),
  'cdp-empty': (c) => setCdp(c, cons(SEQ)),
  'cdp-reasons-only': (c) => setCdp(c, cons(SEQ, cons(SEQ, prim(0x81, [0x07, 0x80])))),
  'cdp-uri-not-ia5': (c) => setCdp(c, cons(SEQ, cons(SEQ, cons(0xa0, cons(0xa0, prim(0x86, [0x68, 0xff])))))),
  'cdp-relative-name': (c) => setCdp(c, cons(SEQ, cons(SEQ, cons(0xa0, cons(0xa1, cons(SEQ, oid('2.5.4.3'), utf8('crl'))))))),
  'cdp-trailing-element': (c) => { const v = cdpValue('http://crl.example.invalid/x.crl'); v.kids![0]!.kids!.push(NULL()); setCdp(c, v); },
};

/** Deterministic xorshift32 for the random mutations. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** Random byte-level mutations of one certificate: bit flips, insertions, deletions, truncations, length changes. */
function randomMutations(base: string, der: Uint8Array, count: number, seed: number): Crafted[] {
  const r = rng(seed);
  const out: Crafted[] = [];
  // Most of a certificate is key and signature bytes; aim half of the changes at the first
  // 300 bytes, where the structure is.
  const pos = () => (r(2) ? r(Math.min(300, der.length)) : r(der.length));
  for (let n = 0; n < count; n++) {
    const b = der.slice();
    let what: string;
    let bytes: Uint8Array;
    switch (r(5)) {
      case 0: {
        const p = pos();
        b[p]! ^= 1 << r(8);
        what = `flip@${p}`;
        bytes = b;
        break;
      }
      case 1: {
        const p = pos();
        what = `insert@${p}`;
        bytes = concat([b.subarray(0, p), new Uint8Array([r(256)]), b.subarray(p)]);
        break;
      }
      case 2: {
        const p = pos();
        what = `delete@${p}`;
        bytes = concat([b.subarray(0, p), b.subarray(p + 1)]);
        break;
      }
      case 3: {
        const p = pos();
        what = `truncate@${p}`;
        bytes = b.subarray(0, p);
        break;
      }
      default: {
        const p = pos();
        b[p] = [0x00, 0x01, 0x7f, 0x80, 0x81, 0xff][r(6)]!;
        what = `set@${p}`;
        bytes = b;
      }
    }
    out.push({ id: `${base}/random-${n}-${what}`, base, kind: 'random', der: bytes, resign: false });
  }
  return out;
}

export interface CorpusOptions {
  /** Random mutations per base certificate. */
  readonly randomPerBase: number;
  readonly seed: number;
}

/** The targeted mutation of one base certificate, or null when the kind does not apply to it. */
export function targeted(base: string, der: Uint8Array, kind: string): Crafted | null {
  const tree = parseTree(der);
  if (TARGETED[kind]!(tree) === false) return null;
  let bytes = encodeTree(tree);
  if (kind === 'cert-trailing-byte') bytes = concat([bytes, h('00')]);
  const resign = !['cert-trailing-byte', 'cert-extra-element', 'signature-unused-bits', 'sigalg-null-parameters-outer-only'].includes(kind);
  return { id: `${base}/${kind}`, base, kind, der: bytes, resign };
}

/** Every targeted mutation of every base, then the random ones. */
export function buildCorpus(bases: ReadonlyArray<{ name: string; der: Uint8Array }>, options: CorpusOptions): Crafted[] {
  const out: Crafted[] = [];
  for (const b of bases) {
    out.push({ id: `${b.name}/original`, base: b.name, kind: 'original', der: b.der, resign: false });
    for (const kind of Object.keys(TARGETED)) {
      const c = targeted(b.name, b.der, kind);
      if (c) out.push(c);
    }
  }
  bases.forEach((b, i) => out.push(...randomMutations(b.name, b.der, options.randomPerBase, options.seed + i)));
  return out;
}

/** Replaces a certificate's signature: `sign` gets the TBSCertificate and returns the DER Ecdsa-Sig-Value. */
export async function resign(der: Uint8Array, sign: (tbs: Uint8Array) => Promise<Uint8Array>): Promise<Uint8Array> {
  const tree = parseTreeLoose(der);
  const tbs = encodeTree(tree.kids![0]!);
  tree.kids![2] = prim(0x03, concat([h('00'), await sign(tbs)]));
  return encodeTree(tree);
}

/** Like parseTree, but a node whose own bytes are not DER this tree can read stays as raw bytes. */
function parseTreeLoose(der: Uint8Array): Node {
  // The top is always SEQUENCE { tbs, alg, sig } written by encodeTree; split it into raw parts.
  const parts: Node[] = [];
  const lenByte = der[1]!;
  let p = lenByte & 0x80 ? 2 + (lenByte & 0x7f) : 2;
  while (p < der.length) {
    const start = p;
    let len = der[p + 1]!;
    let q = p + 2;
    if (len === 0x80) {
      throw new Error('indefinite length at the top level');
    }
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[q + i]!;
      q += n;
    }
    p = q + len;
    parts.push({ tag: der[start]!, raw: der.slice(start, p) });
  }
  return cons(SEQ, ...parts);
}

export { rawNode };

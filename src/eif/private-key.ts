/**
 * EC private keys in PEM, as `openssl ecparam -genkey` (SEC1, `EC PRIVATE KEY`) or
 * `openssl genpkey` (PKCS#8, `PRIVATE KEY`) write them: the curve and the secret scalar.
 * @module
 */
import { CURVE_OIDS, type EcCurve } from './certificate.js';
import { DER, children, decodeDer, expectTag, oidText, type DerElement } from './der.js';
import { EifBuildError } from './errors.js';
import { pemBlocks } from './pem.js';

export interface EcPrivateKey {
  readonly curve: EcCurve;
  readonly secret: Uint8Array;
}

const SIZES: Record<EcCurve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

function fromSec1(el: DerElement, curveHint: EcCurve | undefined): EcPrivateKey {
  const parts = children(expectTag(el, DER.SEQUENCE, 'ECPrivateKey'));
  const secret = expectTag(parts[1], DER.OCTET_STRING, 'privateKey').value;
  let curve = curveHint;
  for (const p of parts.slice(2)) {
    if (p.tag === 0xa0) {
      const [oid] = children(p);
      curve = CURVE_OIDS[oidText(expectTag(oid, DER.OID, 'namedCurve').value)] ?? curve;
    }
  }
  if (!curve) throw new EifBuildError('BAD_PRIVATE_KEY', 'private key is not on P-256, P-384 or P-521');
  const size = SIZES[curve];
  if (secret.length > size) throw new EifBuildError('BAD_PRIVATE_KEY', `private key scalar is ${secret.length} bytes, too long for ${curve}`);
  const padded = new Uint8Array(size);
  padded.set(secret, size - secret.length);
  return { curve, secret: padded };
}

/** Reads the first EC private key in PEM text. Throws {@link EifBuildError} `BAD_PRIVATE_KEY`. */
export function parseEcPrivateKeyPem(pem: string): EcPrivateKey {
  const blocks = pemBlocks(pem);
  try {
    for (const b of blocks) {
      if (b.label === 'EC PRIVATE KEY') return fromSec1(decodeDer(b.der), undefined);
      if (b.label === 'PRIVATE KEY') {
        const [, alg, key] = children(expectTag(decodeDer(b.der), DER.SEQUENCE, 'PrivateKeyInfo'));
        const [algOid, params] = children(expectTag(alg, DER.SEQUENCE, 'AlgorithmIdentifier'));
        if (oidText(expectTag(algOid, DER.OID, 'algorithm').value) !== '1.2.840.10045.2.1') {
          throw new EifBuildError('BAD_PRIVATE_KEY', 'private key is not an EC key');
        }
        const curve = params?.tag === DER.OID ? CURVE_OIDS[oidText(params.value)] : undefined;
        return fromSec1(decodeDer(expectTag(key, DER.OCTET_STRING, 'privateKey').value), curve);
      }
    }
  } catch (e) {
    if (e instanceof EifBuildError) throw e;
    throw new EifBuildError('BAD_PRIVATE_KEY', `private key does not parse: ${(e as Error).message}`);
  }
  throw new EifBuildError('BAD_PRIVATE_KEY', blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY') ? 'encrypted private keys are not supported; decrypt it first' : 'no "EC PRIVATE KEY" or "PRIVATE KEY" PEM block found');
}

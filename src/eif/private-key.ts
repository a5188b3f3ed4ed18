/**
 * EC private keys for build-eif signing, in PEM as `openssl ecparam -genkey` (SEC1,
 * `EC PRIVATE KEY`) or `openssl genpkey` (PKCS#8, `PRIVATE KEY`) write them: the curve and the
 * secret scalar, padded to the curve's size. The DER is read by src/x509/private-key.ts.
 * @module
 */
import { CURVE_OIDS, type EcCurve, OID } from '../x509/oids.js';
import { pemBlocks } from '../x509/pem.js';
import { readEcPrivateKey, readPkcs8 } from '../x509/private-key.js';
import { EifBuildError } from './errors.js';

export interface EcPrivateKey {
  readonly curve: EcCurve;
  readonly secret: Uint8Array;
}

const SIZES: Record<EcCurve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

function fromSec1(der: Uint8Array, curveHint: EcCurve | undefined): EcPrivateKey {
  const key = readEcPrivateKey(der);
  const curve = (key.curve !== null ? CURVE_OIDS[key.curve] : undefined) ?? curveHint;
  if (!curve) throw new EifBuildError('BAD_PRIVATE_KEY', 'private key is not on P-256, P-384 or P-521');
  const size = SIZES[curve];
  if (key.secret.length > size) throw new EifBuildError('BAD_PRIVATE_KEY', `private key scalar is ${key.secret.length} bytes, too long for ${curve}`);
  const padded = new Uint8Array(size);
  padded.set(key.secret, size - key.secret.length);
  return { curve, secret: padded };
}

/** Reads the first EC private key in PEM text. Throws {@link EifBuildError} `BAD_PRIVATE_KEY`. */
export function parseEcPrivateKeyPem(pem: string): EcPrivateKey {
  const blocks = pemBlocks(pem);
  try {
    for (const b of blocks) {
      if (b.label === 'EC PRIVATE KEY') return fromSec1(b.der, undefined);
      if (b.label === 'PRIVATE KEY') {
        const info = readPkcs8(b.der);
        if (info.algorithm !== OID.ecPublicKey) throw new EifBuildError('BAD_PRIVATE_KEY', 'private key is not an EC key');
        return fromSec1(info.privateKey, info.curve !== null ? CURVE_OIDS[info.curve] : undefined);
      }
    }
  } catch (e) {
    if (e instanceof EifBuildError) throw e;
    throw new EifBuildError('BAD_PRIVATE_KEY', `private key does not parse: ${(e as Error).message}`);
  }
  throw new EifBuildError('BAD_PRIVATE_KEY', blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY') ? 'encrypted private keys are not supported; decrypt it first' : 'no "EC PRIVATE KEY" or "PRIVATE KEY" PEM block found');
}

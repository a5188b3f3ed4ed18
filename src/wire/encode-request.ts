/**
 * Request encoding, the client side: the bytes nsm-api (serde_cbor) sends for each request.
 * Used by the CLI's JSON mode, the examples, and anyone driving a device from outside.
 * @module
 */
import { CborWriter } from './cbor-encode.js';
import type { NsmRequest } from './messages.js';

/** The CBOR bytes nsm-api sends for a request (the client side; for tests and tools). */
export function encodeRequest(req: NsmRequest): Uint8Array {
  const w = new CborWriter(64);
  switch (req.type) {
    case 'DescribeNSM':
    case 'GetRandom':
      return w.text(req.type).finish();
    case 'DescribePCR':
    case 'LockPCR':
      return w.mapHeader(1).text(req.type).mapHeader(1).text('index').uint(req.index).finish();
    case 'LockPCRs':
      return w.mapHeader(1).text(req.type).mapHeader(1).text('range').uint(req.range).finish();
    case 'ExtendPCR':
      return w.mapHeader(1).text(req.type).mapHeader(2).text('index').uint(req.index).text('data').bytes(req.data).finish();
    case 'Attestation':
      return w
        .mapHeader(1)
        .text(req.type)
        .mapHeader(3)
        .text('user_data')
        .bytesOrNull(req.userData)
        .text('nonce')
        .bytesOrNull(req.nonce)
        .text('public_key')
        .bytesOrNull(req.publicKey)
        .finish();
  }
}

// Attestation documents per second through the device, each beside the raw primitive doing the
// same signature: node:crypto ECDSA P-384 / SHA-384 over the same Sig_structure bytes, measured
// in the same run. Three signing paths: the core's default (WebCrypto), the Node attester
// (node:crypto, what the CLI uses) and pure JS (@noble/curves). Then cold start: a new device
// with the committed test CA up to its first document (median over many starts; <= 10 ms).
import { generateKeyPairSync, sign, webcrypto } from 'node:crypto';
import { p384 } from '@noble/curves/nist.js';
import { compare } from './harness.js';
import { NsmDevice } from '../dist/index.js';
import { caAttester, committedTestCa, parseAttestationDocument, sigStructure } from '../dist/attestation/index.js';
import { nodeAttester } from '../dist/node/ca-dir.js';

// Inputs of a typical request: a 32-byte nonce, 32 bytes of user data, a 65-byte public key.
const request = {
  nonce: new Uint8Array(32).fill(1),
  userData: new Uint8Array(32).fill(2),
  publicKey: new Uint8Array(65).fill(3),
};

function nodeBaseline(sigStructureBytes) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  return () => sign('sha384', sigStructureBytes, { key: privateKey, dsaEncoding: 'ieee-p1363' });
}

/** The same signature through WebCrypto, the core default's own primitive. */
async function webCryptoBaseline(sigStructureBytes) {
  const { privateKey } = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign']);
  return () => webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, privateKey, sigStructureBytes);
}

/** The same signature through @noble/curves (RFC 6979), the pure-JS path's own primitive. */
function nobleBaseline(sigStructureBytes) {
  const secretKey = p384.utils.randomSecretKey();
  return () => p384.sign(sigStructureBytes, secretKey);
}

const BASELINES = {
  'node:crypto': nodeBaseline,
  WebCrypto: webCryptoBaseline,
  '@noble/curves': nobleBaseline,
};

async function documentsPerSecond(name, device, target, primitive = 'node:crypto') {
  const first = await device.attestation(request);
  const baselineFn = await BASELINES[primitive](sigStructure(parseAttestationDocument(first).payload));
  return compare({
    name,
    fn: () => device.attestation(request),
    baseline: `${primitive} P-384 sign of the same Sig_structure`,
    baselineFn,
    target,
    extra: { unit: 'docs/s', documentBytes: first.length },
  });
}

async function coldStart(label, options, targetMedianMs = 10) {
  const starts = 40;
  const times = [];
  const make = typeof options === 'function' ? options : () => options;
  await new NsmDevice(make()).attestation(request); // load modules once; every start below is a new device
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    await new NsmDevice(make()).attestation(request);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const medianMs = times[times.length >> 1];
  const probe = await new NsmDevice().attestation(request);
  const baselineFn = nodeBaseline(sigStructure(parseAttestationDocument(probe).payload));
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) baselineFn();
  const baselineOpsPerSec = (n * 1000) / (performance.now() - t0);
  const opsPerSec = 1000 / medianMs;
  return {
    name: `cold start${label}: new device + first document (median ${medianMs.toFixed(2)} ms)`,
    opsPerSec,
    baseline: 'node:crypto P-384 sign',
    baselineOpsPerSec,
    ratio: opsPerSec / baselineOpsPerSec,
    unit: 'starts/s',
    medianMs,
    ...(targetMedianMs === null ? {} : { targetMedianMs, pass: medianMs <= targetMedianMs }),
  };
}

export async function run() {
  const rows = [];
  const core = new NsmDevice();
  rows.push(await documentsPerSecond('attestation documents (core default: WebCrypto)', core, 0.9));
  // What the core adds on top of its own primitive: Node's WebCrypto signs through the thread
  // pool, which alone costs 15-25% against a synchronous node:crypto signature.
  rows.push(await documentsPerSecond('attestation documents (core default: WebCrypto)', core, undefined, 'WebCrypto'));
  const node = new NsmDevice({ attester: nodeAttester() });
  rows.push(await documentsPerSecond('attestation documents (nsm-emulator/node: node:crypto)', node, 0.9));
  const pureJs = new NsmDevice({ attester: caAttester(committedTestCa(), { crypto: 'noble' }) });
  rows.push(await documentsPerSecond('attestation documents (pure JS, @noble/curves)', pureJs));
  rows.push(await documentsPerSecond('attestation documents (pure JS, @noble/curves)', pureJs, undefined, '@noble/curves'));
  rows.push(await coldStart('', {}));
  // Each device at a time 11 days from the last: none of the derived intermediates is cached, so
  // every start also derives a regional, a zonal and an instance certificate.
  let far = Date.now();
  rows.push(await coldStart(' (no intermediates cached)', () => { far += 11 * 86_400_000; const t = far; return { clock: () => t }; }, null));
  return rows;
}

// The local KMS: Decrypt with a Recipient attestation document, as requests per second over
// HTTP (one at a time on one keep-alive connection, the JSON 1.1 protocol), beside the sum of the crypto such a
// request cannot avoid, measured in the same run: verifying the document (chain and ES384
// signature through the package's verifier), importing the recipient's RSA key, RSA-OAEP of
// the content key, AES-GCM opening of the ciphertext blob and AES-CBC of the answer.
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { compare } from './harness.js';
import { KmsService, NsmDevice, committedTestCa, verifyAttestationDocument } from '../dist/index.js';
import { KmsHttpServer } from '../dist/node/index.js';

const subtle = webcrypto.subtle;

function post(agent, port, target, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': `TrentService.${target}`,
          authorization: `AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const json = JSON.parse(Buffer.concat(chunks).toString());
          if (res.statusCode !== 200) reject(new Error(`${target}: ${json.__type} ${json.message ?? ''}`));
          else resolve(json);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}


/**
 * A minimal keep-alive HTTP/1.1 client on one socket: the request bytes are made once and each
 * call writes them and reads one response (by Content-Length), so the row measures the endpoint
 * rather than node:http's client.
 */
async function rawClient(port, target, body) {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const payload = Buffer.from(body);
  const head = Buffer.from(
    `POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.${target}\r\n` +
      `Authorization: AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}\r\n` +
      `Content-Length: ${payload.length}\r\n\r\n`,
  );
  const message = Buffer.concat([head, payload]);
  let pending = null;
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0 || !pending) return;
    const headers = buf.subarray(0, end).toString('latin1');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)[1]);
    if (buf.length < end + 4 + length) return;
    const status = Number(headers.slice(9, 12));
    const json = JSON.parse(buf.subarray(end + 4, end + 4 + length).toString());
    buf = buf.subarray(end + 4 + length);
    const { resolve, reject } = pending;
    pending = null;
    if (status !== 200) reject(new Error(`${target}: ${json.__type} ${json.message ?? ''}`));
    else resolve(json);
  });
  return {
    call: () =>
      new Promise((resolve, reject) => {
        pending = { resolve, reject };
        socket.write(message);
      }),
    close: () => socket.destroy(),
  };
}

export async function run() {
  const root = committedTestCa().root.der;
  const server = new KmsHttpServer(new KmsService({ trustRoots: [root] }));
  const port = Number(new URL(await server.listen('127.0.0.1', 0)).port);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const pcr0 = new Uint8Array(48).fill(0xab);
    const policy = JSON.stringify({
      Statement: [
        { Effect: 'Allow', Principal: { AWS: '111122223333' }, Action: 'kms:Encrypt', Resource: '*' },
        { Sid: 'Enclave', Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: { StringEqualsIgnoreCase: { 'kms:RecipientAttestation:PCR0': Buffer.from(pcr0).toString('hex') } } },
      ],
    });
    const { KeyMetadata } = await post(agent, port, 'CreateKey', JSON.stringify({ Policy: policy }));
    const { CiphertextBlob } = await post(agent, port, 'Encrypt', JSON.stringify({ KeyId: KeyMetadata.KeyId, Plaintext: Buffer.alloc(32, 7).toString('base64') }));
    const spki = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }));
    const doc = await new NsmDevice({ pcrs: { 0: pcr0 } }).attestation({ publicKey: spki });
    const body = JSON.stringify({ CiphertextBlob, Recipient: { AttestationDocument: Buffer.from(doc).toString('base64'), KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } });

    // The baseline's own inputs: an AES-GCM blob of the same size and the same document.
    const gcmKey = await subtle.importKey('raw', new Uint8Array(32).fill(1), 'AES-GCM', false, ['encrypt', 'decrypt']);
    const iv = new Uint8Array(12);
    const sealed = await subtle.encrypt({ name: 'AES-GCM', iv }, gcmKey, new Uint8Array(32));
    const irreducible = async () => {
      await verifyAttestationDocument(doc, { root });
      const rsa = await subtle.importKey('spki', spki, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
      const plain = await subtle.decrypt({ name: 'AES-GCM', iv }, gcmKey, sealed);
      const cek = webcrypto.getRandomValues(new Uint8Array(32));
      const aes = await subtle.importKey('raw', cek, 'AES-CBC', false, ['encrypt']);
      await subtle.encrypt({ name: 'RSA-OAEP' }, rsa, cek);
      await subtle.encrypt({ name: 'AES-CBC', iv: new Uint8Array(16) }, aes, plain);
    };

    const client = await rawClient(port, 'Decrypt', body);
    const row = await compare({
      name: 'kms: Decrypt with Recipient over HTTP',
      fn: async () => {
        const out = await client.call();
        if (!out.CiphertextForRecipient) throw new Error('no CiphertextForRecipient');
      },
      baseline: 'document verification + RSA-OAEP + AES (same run)',
      baselineFn: irreducible,
      target: 0.7,
      rounds: 9,
      ms: 800,
      extra: { unit: 'req/s' },
    });
    client.close();
    return [row];
  } finally {
    agent.destroy();
    await server.close();
  }
}

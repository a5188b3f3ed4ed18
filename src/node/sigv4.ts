/**
 * AWS Signature Version 4 on incoming requests (Node only): reading the caller's access key id
 * from the Authorization header, and, when the endpoint is given key pairs, checking the
 * signature the way AWS does (canonical request, string to sign, HMAC-SHA256 key chain).
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface SigV4Credential {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

/** A request whose authentication fails: the KMS exception name and a message. */
export class SigV4Error extends Error {
  override readonly name = 'SigV4Error';
  constructor(
    readonly type: 'MissingAuthenticationTokenException' | 'IncompleteSignatureException' | 'InvalidSignatureException' | 'UnrecognizedClientException',
    message: string,
  ) {
    super(message);
  }
}

const AUTH = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})\s*$/;

/** Parses the Authorization header (SigV4 only). */
export function parseAuthorization(headers: IncomingHttpHeaders): SigV4Credential {
  const h = headers.authorization;
  if (h === undefined || h === '') throw new SigV4Error('MissingAuthenticationTokenException', 'Missing Authentication Token');
  const m = AUTH.exec(h);
  if (!m) throw new SigV4Error('IncompleteSignatureException', `Authorization header: ${authorizationProblem(h)}`);
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! };
}

/** Which part of a malformed SigV4 Authorization header is wrong, for the error message. */
function authorizationProblem(h: string): string {
  if (!/^AWS4-HMAC-SHA256\s/.test(h)) return 'expected the AWS4-HMAC-SHA256 scheme';
  const part = (name: string) => new RegExp(`[\\s,]${name}=([^,\\s]*)`).exec(h)?.[1];
  const credential = part('Credential');
  if (credential === undefined || !/^[^/]+\/\d{8}\/[^/]+\/[^/]+\/aws4_request$/.test(credential)) {
    return 'Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request';
  }
  const signed = part('SignedHeaders');
  if (signed === undefined || !/^[a-z0-9;_.-]+$/.test(signed)) return 'SignedHeaders must list lowercase header names separated by semicolons';
  const signature = part('Signature');
  if (signature === undefined) return 'Signature is missing';
  if (!/^[0-9a-f]{64}$/.test(signature)) return `Signature must be 64 lowercase hex digits (an HMAC-SHA256), got ${signature.length} characters`;
  return 'expected Credential=..., SignedHeaders=..., Signature=... in that order, separated by commas';
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256Hex = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((p) => {
      const i = p.indexOf('=');
      const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1));
      return [uriEncode(k), uriEncode(v)] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** How far the request's X-Amz-Date may be from the endpoint's clock, as AWS allows. */
export const SIGV4_SKEW_MS = 15 * 60 * 1000;

/**
 * Checks the signature of a request with the secret key of its access key id; throws
 * {@link SigV4Error} (InvalidSignatureException) when it does not match.
 */
export function verifySigV4(cred: SigV4Credential, secret: string, req: { method: string; url: string; headers: IncomingHttpHeaders; body: Uint8Array }, now = Date.now()): void {
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string' || !/^\d{8}T\d{6}Z$/.test(amzDate)) throw new SigV4Error('IncompleteSignatureException', 'X-Amz-Date header is missing or not YYYYMMDDTHHMMSSZ');
  if (!amzDate.startsWith(cred.date)) throw new SigV4Error('InvalidSignatureException', 'the credential scope date does not match X-Amz-Date');
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(now - t) > SIGV4_SKEW_MS) throw new SigV4Error('InvalidSignatureException', `Signature expired: ${amzDate} is more than 15 minutes from the endpoint's time`);
  if (!cred.signedHeaders.includes('host')) throw new SigV4Error('InvalidSignatureException', "SignedHeaders must include 'host'");
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const headerLines = cred.signedHeaders.map((name) => {
    const v = req.headers[name];
    if (v === undefined) throw new SigV4Error('InvalidSignatureException', `signed header '${name}' is not in the request`);
    const value = (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
    return `${name}:${value}\n`;
  });
  const payloadHash = sha256Hex(req.body);
  const canonical = [req.method, path.split('/').map((s) => uriEncode(decodeURIComponent(s))).join('/'), canonicalQuery(query), headerLines.join(''), cred.signedHeaders.join(';'), payloadHash].join('\n');
  const scope = `${cred.date}/${cred.region}/${cred.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, cred.date), cred.region), cred.service), 'aws4_request');
  const expected = createHmac('sha256', key).update(toSign, 'utf8').digest();
  const got = Buffer.from(cred.signature, 'hex');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new SigV4Error('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
}

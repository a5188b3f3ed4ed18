/**
 * The local KMS over HTTP (Node only): AWS KMS's JSON 1.1 protocol (`POST /` with
 * `X-Amz-Target: TrentService.<Operation>` and `Content-Type: application/x-amz-json-1.1`), so
 * AWS SDKs and the AWS CLI work against it with an endpoint override.
 *
 * Callers are identified by the access key id in their SigV4 Authorization header: any key is
 * accepted unless `credentials` are configured, in which case the signature is checked. Each
 * access key maps to a principal ARN (`principals`, default the account's root).
 *
 * Bounded: request bodies (default 1 MiB, refused before reading when Content-Length says so),
 * header size and count, concurrent connections, and the time a request may take to arrive.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KmsError } from '../kms/errors.js';
import type { KmsCaller, KmsService } from '../kms/service.js';
import { SigV4Error, parseAuthorization, verifySigV4 } from './sigv4.js';

export interface KmsServerOptions {
  /** Access key id -> secret key. When given, every request's SigV4 signature is checked. */
  readonly credentials?: ReadonlyMap<string, string>;
  /** Access key id -> principal ARN (default: `arn:aws:iam::<account>:root`). */
  readonly principals?: ReadonlyMap<string, string>;
  /** Largest request body, bytes (default 1 MiB: a 256 KiB document in base64 plus JSON). */
  readonly maxBodyBytes?: number;
  /** Concurrent connections (default 64); more are refused by the kernel-level accept limit. */
  readonly maxConnections?: number;
  /** Time allowed for a whole request to arrive, ms (default 30 s); for headers (default 10 s). */
  readonly requestTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  /** Called for events a person running the endpoint should see (refused connections, bad requests). */
  readonly onEvent?: (message: string) => void;
}

const JSON_TYPES = ['application/x-amz-json-1.1', 'application/x-amz-json-1.0', 'application/json'];

export class KmsHttpServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly service: KmsService,
    private readonly options: KmsServerOptions = {},
  ) {}

  /** Starts listening; resolves to `http://HOST:PORT` (with the port chosen when 0 was asked). */
  listen(host = '127.0.0.1', port = 0): Promise<string> {
    if (this.server) throw new Error('already listening');
    const server = process.getBuiltinModule('node:http').createServer(
      {
        maxHeaderSize: 16384,
        requestTimeout: this.options.requestTimeoutMs ?? 30_000,
        headersTimeout: this.options.headersTimeoutMs ?? 10_000,
        keepAliveTimeout: 5_000,
      },
      (req, res) => void this.handle(req, res),
    );
    server.maxHeadersCount = 100;
    server.maxRequestsPerSocket = 10_000;
    server.maxConnections = this.options.maxConnections ?? 64;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('drop', () => this.options.onEvent?.(`connection refused: already ${server.maxConnections} open (maxConnections)`));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      this.options.onEvent?.(`bad HTTP request: ${err.code ?? err.message}`);
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const a = server.address() as AddressInfo;
        resolve(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private send(res: ServerResponse, status: number, body: unknown, close = false): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'Content-Length': Buffer.byteLength(text),
      'x-amzn-RequestId': randomUUID(),
      ...(close ? { Connection: 'close' } : {}),
    });
    res.end(text);
  }

  private fail(res: ServerResponse, type: string, message: string, status = 400, close = false): void {
    this.send(res, status, message ? { __type: type, message } : { __type: type }, close);
  }

  private readBody(req: IncomingMessage, max: number): Promise<Uint8Array | null> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) {
          req.removeAllListeners('data');
          req.pause();
          resolve(null);
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(size > max ? null : new Uint8Array(Buffer.concat(chunks))));
      req.on('error', reject);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const max = this.options.maxBodyBytes ?? 1024 * 1024;
      if (req.method !== 'POST' || !(req.url === '/' || req.url?.startsWith('/?'))) {
        req.resume();
        return this.fail(res, 'UnknownOperationException', `expected POST / with X-Amz-Target: TrentService.<Operation>, got ${req.method} ${req.url}`, 404);
      }
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > max) {
        this.options.onEvent?.(`request body of ${declared} bytes refused (limit ${max})`);
        return this.fail(res, 'ValidationException', `the request body is ${declared} bytes; this endpoint accepts at most ${max}`, 413, true);
      }
      const body = await this.readBody(req, max);
      if (body === null) {
        this.options.onEvent?.(`request body over ${max} bytes refused`);
        return this.fail(res, 'ValidationException', `the request body exceeds ${max} bytes`, 413, true);
      }
      const target = req.headers['x-amz-target'];
      const m = typeof target === 'string' ? /^TrentService\.([A-Za-z]+)$/.exec(target) : null;
      if (!m) return this.fail(res, 'UnknownOperationException', `X-Amz-Target must be TrentService.<Operation>, got ${JSON.stringify(target ?? null)}`);
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (!JSON_TYPES.includes(type)) return this.fail(res, 'SerializationException', `Content-Type must be application/x-amz-json-1.1, got ${JSON.stringify(type)}`);

      let caller: KmsCaller;
      try {
        caller = this.caller(req, body);
      } catch (e) {
        if (!(e instanceof SigV4Error)) throw e;
        this.options.onEvent?.(`${m[1]}: authentication refused: ${e.type}: ${e.message}`);
        return this.fail(res, e.type, e.message, e.type === 'MissingAuthenticationTokenException' ? 403 : 400);
      }
      let json: unknown;
      try {
        json = body.length === 0 ? {} : JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
      } catch (e) {
        return this.fail(res, 'SerializationException', `the body is not JSON (${(e as Error).message})`);
      }
      try {
        this.send(res, 200, await this.service.handle(m[1]!, json, caller));
      } catch (e) {
        if (!(e instanceof KmsError)) throw e;
        this.fail(res, e.type, e.message, e.status);
      }
    } catch (e) {
      this.options.onEvent?.(`internal error: ${(e as Error)?.stack ?? String(e)}`);
      if (!res.headersSent) this.fail(res, 'KMSInternalException', 'An internal error occurred', 500);
      else res.destroy();
    }
  }

  private caller(req: IncomingMessage, body: Uint8Array): KmsCaller {
    const cred = parseAuthorization(req.headers);
    const { credentials, principals } = this.options;
    if (credentials && credentials.size > 0) {
      const secret = credentials.get(cred.accessKeyId);
      if (secret === undefined) throw new SigV4Error('UnrecognizedClientException', 'The security token included in the request is invalid.');
      verifySigV4(cred, secret, { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body });
    }
    const arn = principals?.get(cred.accessKeyId) ?? `arn:aws:iam::${this.service.account}:root`;
    const account = /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(arn)?.[1] ?? this.service.account;
    return { accessKeyId: cred.accessKeyId, principalArn: arn, account };
  }
}

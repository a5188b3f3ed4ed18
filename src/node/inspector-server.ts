/**
 * Serves the attestation-document inspector page (src/inspector) on a local HTTP port: the
 * markup, its style sheet, the package's compiled core modules from dist/ and the two @noble
 * packages they import. It serves files and nothing else: the page does all its work in the
 * browser, and its Content-Security-Policy forbids it any other connection.
 * @module
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSPECTOR_CSS, inspectorHtml } from '../inspector/page-html.js';

/** node:fs/promises, loaded when the inspector first serves (not when nsm-emulator/node is imported). */
const fsp = () => process.getBuiltinModule('node:fs/promises');

export interface InspectorServerOptions {
  /** Host to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default 0: the system picks one). */
  readonly port?: number;
  /** Compiled package modules to serve (default: this package's dist/). */
  readonly distDir?: string;
  /** Most simultaneous connections (default 32). */
  readonly maxConnections?: number;
}

/** The page cannot be served (no compiled package, or the port is taken). */
export class InspectorServerError extends Error {
  override readonly name = 'InspectorServerError';
}

/** Largest file the server will send (the biggest core module is a few tens of KiB). */
const MAX_FILE = 2 << 20;
const MODULE_PATH = /^\/(lib|vendor\/@noble\/(?:hashes|curves))\/((?:[A-Za-z0-9_-]+\/)*[A-Za-z0-9_.-]+\.js)$/;

function packageRoot(): string {
  // src/node/ (tests) and dist/node/ (package) are both two levels below the package root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

async function nobleDir(name: 'hashes' | 'curves'): Promise<string> {
  return fsp().realpath(dirname(createRequire(import.meta.url).resolve(`@noble/${name}/utils.js`)));
}

export class InspectorServer {
  private constructor(
    private readonly server: Server,
    /** The page's address, e.g. `http://127.0.0.1:41234/`. */
    readonly url: string,
  ) {}

  /** Starts serving; resolves once listening. */
  static async start(options: InspectorServerOptions = {}): Promise<InspectorServer> {
    const dist = await fsp().realpath(options.distDir ?? join(packageRoot(), 'dist')).catch(() => {
      throw new InspectorServerError('the compiled package (dist/) is missing: run npm run build');
    });
    const roots: Record<string, string> = {
      lib: dist,
      'vendor/@noble/hashes': await nobleDir('hashes'),
      'vendor/@noble/curves': await nobleDir('curves'),
    };
    const importMap = JSON.stringify({ imports: { '@noble/hashes/': '/vendor/@noble/hashes/', '@noble/curves/': '/vendor/@noble/curves/' } });
    const html = inspectorHtml(importMap);
    const mapHash = createHash('sha256').update(importMap).digest('base64');
    const csp = [
      "default-src 'none'",
      `script-src 'self' 'sha256-${mapHash}'`,
      "style-src 'self'",
      'img-src data:',
      "connect-src 'none'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');

    const send = (res: ServerResponse, status: number, type: string, body: string | Uint8Array) => {
      res.writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        'content-security-policy': csp,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      });
      res.end(res.req.method === 'HEAD' ? undefined : body);
    };

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET\n');
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/' || path === '/index.html') return send(res, 200, 'text/html; charset=utf-8', html);
      if (path === '/app.css') return send(res, 200, 'text/css; charset=utf-8', INSPECTOR_CSS);
      const m = MODULE_PATH.exec(path);
      const base = m ? roots[m[1]!] : undefined;
      if (!m || !base) return send(res, 404, 'text/plain', 'not found\n');
      try {
        const file = await fsp().realpath(join(base, m[2]!));
        if (!file.startsWith(base + sep)) return send(res, 404, 'text/plain', 'not found\n');
        const body = await fsp().readFile(file);
        if (body.length > MAX_FILE) return send(res, 404, 'text/plain', 'not found\n');
        return send(res, 200, 'text/javascript; charset=utf-8', body);
      } catch {
        return send(res, 404, 'text/plain', 'not found\n');
      }
    };

    const server = process.getBuiltinModule('node:http').createServer((req, res) => {
      handle(req, res).catch(() => send(res, 500, 'text/plain', 'error\n'));
    });
    server.maxConnections = options.maxConnections ?? 32;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((ok, fail) => {
      server.once('error', (e: NodeJS.ErrnoException) => fail(new InspectorServerError(`cannot listen on ${host}:${options.port ?? 0} (${e.code ?? e.message})`)));
      server.listen(options.port ?? 0, host, () => ok());
    });
    const a = server.address() as AddressInfo;
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return new InspectorServer(server, `http://${shown}:${a.port}/`);
  }

  /** The page's address opening `document` (raw bytes) through `#doc=<base64url>`. */
  urlFor(document: Uint8Array): string {
    return `${this.url}#doc=${Buffer.from(document).toString('base64url')}`;
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

/**
 * `nsm-emulator inspect`: serve the attestation-document inspector page on a local port and,
 * given a document, print the address that opens it.
 * @module
 */
import { open } from 'node:fs/promises';
import { DocumentInputError, decodeDocumentInput } from '../attestation/document-input.js';
import { InspectorServer, InspectorServerError } from '../node/inspector-server.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { isLoopback, parseListen } from './serve.js';

const HELP = `Usage: nsm-emulator inspect [DOC] [--listen [HOST:]PORT]

Serves a page that shows an attestation document the way a person needs it: the verdict
against the emulator's test root, AWS's root or a root you drop in, module_id, timestamp, every
PCR, user_data / nonce / public_key decoded, and the certificate chain as a timeline of
validity windows. It compares PCRs with expected values (describe-eif JSON or N=HEX lines) and
two documents side by side. Everything is decoded and verified in the browser: the page makes
no other requests.

DOC is a file (or - for standard input) holding a document as raw CBOR, hex or base64 (at most
64 KiB); the address printed after 'listening on' opens it directly.

  --listen [HOST:]PORT  where to serve (default 127.0.0.1:0, a free port)

Prints 'listening on http://HOST:PORT/' first, then 'open http://HOST:PORT/#doc=...' when DOC
is given. Runs until Ctrl-C or SIGTERM (exit 0). Exit 2 for usage errors.`;

/** A document is a few KiB (real ones about 4.5 KiB); this leaves room for any sane one. */
const DOCUMENT_FILE_MAX = 64 * 1024;

async function readBounded(path: string, io: CliIo): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const take = (c: Uint8Array) => {
    total += c.length;
    if (total > DOCUMENT_FILE_MAX) throw new UsageError(`${path}: larger than ${DOCUMENT_FILE_MAX} bytes; expected an attestation document`);
    chunks.push(c);
  };
  if (path === '-') {
    for await (const c of io.stdin) take(typeof c === 'string' ? new TextEncoder().encode(c) : new Uint8Array(c as Uint8Array));
  } else {
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw new UsageError(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      const buf = new Uint8Array(DOCUMENT_FILE_MAX + 1);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        take(buf.slice(0, bytesRead));
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`${path}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    } finally {
      await handle.close();
    }
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({ args, options: { listen: { type: 'string' } }, strict: true, allowPositionals: true });
  if (parsed.positionals.length > 1) throw new UsageError(`expected at most one DOC, got ${parsed.positionals.length}`);
  const where = parsed.values.listen === undefined ? { host: '127.0.0.1', port: 0 } : parseListen(parsed.values.listen);
  let doc: Uint8Array | null = null;
  const file = parsed.positionals[0];
  if (file !== undefined) {
    try {
      doc = decodeDocumentInput(await readBounded(file, io));
    } catch (e) {
      if (e instanceof DocumentInputError) throw new UsageError(`${file}: ${e.message}`);
      throw e;
    }
  }
  let server: InspectorServer;
  try {
    server = await InspectorServer.start(where);
  } catch (e) {
    if (e instanceof InspectorServerError) {
      io.stderr.write(`nsm-emulator inspect: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    io.stdout.write(`listening on ${server.url}\n`);
    if (doc) io.stdout.write(`open ${server.urlFor(doc)}\n`);
    if (!isLoopback(where.host)) io.stderr.write(`nsm-emulator inspect: warning: ${server.url} is reachable from other machines\n`);
    io.stderr.write('nsm-emulator inspect: stop with Ctrl-C or SIGTERM\n');
    await stopped;
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await server.close();
  }
}

export const command: CliCommand = {
  summary: 'serve a page that shows and checks an attestation document (in your browser)',
  help: HELP,
  run,
};

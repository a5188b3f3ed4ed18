/**
 * `nsm-emulator inspect`: serve the attestation-document inspector page on a local port and,
 * given a document, print the address that opens it.
 * @module
 */
import { DocumentInputError, decodeDocumentInput } from '../attestation/document-input.js';
import { InspectorServer, InspectorServerError } from '../node/inspector-server.js';
import { INPUT_LIMITS, readInput } from './files.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { parseFlags } from './parse.js';
import { isLoopback, parseListen } from './serve.js';
import { stopSignal } from './stop-signal.js';

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

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({ args, options: { listen: { type: 'string' } }, strict: true, allowPositionals: true });
  if (parsed.positionals.length > 1) throw new UsageError(`expected at most one DOC, got ${parsed.positionals.length}`);
  const where = parsed.values.listen === undefined ? { host: '127.0.0.1', port: 0 } : parseListen(parsed.values.listen);
  let doc: Uint8Array | null = null;
  const file = parsed.positionals[0];
  if (file !== undefined) {
    try {
      const label = file === '-' ? 'standard input' : file;
      doc = decodeDocumentInput(await readInput(label, file, INPUT_LIMITS.document, 'an attestation document as raw CBOR, hex or base64', io));
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
  const signal = stopSignal();
  try {
    io.stdout.write(`listening on ${server.url}\n`);
    if (doc) io.stdout.write(`open ${server.urlFor(doc)}\n`);
    if (!isLoopback(where.host)) io.stderr.write(`nsm-emulator inspect: warning: ${server.url} is reachable from other machines\n`);
    io.stderr.write('nsm-emulator inspect: stop with Ctrl-C or SIGTERM\n');
    await signal.stopped;
    return 0;
  } finally {
    signal.dispose();
    await server.close();
  }
}

export const command: CliCommand = {
  summary: 'serve a page that shows and checks an attestation document (in your browser)',
  help: HELP,
  run,
};

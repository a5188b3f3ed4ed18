/**
 * `nsm-emulator serve`: one emulated NSM shared by every client of a Unix socket and/or a TCP
 * port, spoken to with 4-byte length-prefixed raw CBOR frames (docs/server.md). Also holds the
 * helpers `exec` shares: endpoint parsing and the `--log` line format.
 * @module
 */
import { describeReason } from '../device/error-code.js';
import { type InternalErrorEvent, NsmDevice } from '../device/nsm-device.js';
import { AddressInUseError, type NsmEndpoint, type NsmExchange, type NsmServerEvent, NsmServer, SocketPathError } from '../node/server.js';
import { DEFAULT_FRAME_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS } from '../node/server-limits.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags, deviceOptionsFromFlags } from './boot-options.js';
import { parseFlags } from './parse.js';
import { NativeBuildError } from '../node/native-build.js';
import { stopSignal } from './stop-signal.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { requestToJson, responseToJson } from './json-codec.js';

const HELP = `Usage: nsm-emulator serve (--socket PATH | --listen [HOST:]PORT)... [options]

Runs one emulated NSM and serves it to any number of clients at once, as one /dev/nsm serves
every process of an enclave: requests from all clients are executed one at a time, in arrival
order, against the same PCRs. Point the /dev/nsm preload shim at it with
NSM_EMULATOR_SOCKET=PATH (see 'nsm-emulator shim' and 'nsm-emulator exec'), or speak the framing
directly: each request and each response is a 4-byte big-endian length followed by that many
bytes of raw CBOR (docs/server.md).

Each address is printed on standard output once listening (unix:PATH or tcp:HOST:PORT, one per
line; with port 0 this shows the port chosen). Stops on SIGINT or SIGTERM and removes its
socket files. A request over 4096 bytes is answered InputTooLarge; a declared length over
1 MiB closes that connection after answering what it already sent (reported on standard
error). Anyone who can connect can extend PCRs and get signed documents: socket files are
created 0600 (only you may connect), whatever the umask.

Options:
  --socket PATH         listen on a Unix domain socket (repeatable); a stale socket file left by
                        a dead server is replaced, a live one is an error
  --socket-mode MODE    octal mode of the socket files (default 0600); e.g. 0660 lets your
                        group connect too
  --listen [HOST:]PORT  listen on TCP (repeatable); HOST defaults to 127.0.0.1. There is no
                        authentication: listen on other interfaces only on trusted networks
  --log                 print every request and response on standard error as one JSON line
                        (the 'rpc --json' form), plus connection events
  --io MODE             how connections are read and written: auto (default) uses the native
                        socket path (a small addon built from C on first use, faster per request)
                        when it can be built, and otherwise says why on standard error and uses
                        Node's sockets; native fails when it cannot be built; node never builds it

Limits (each logged on standard error when it triggers):
  --max-connections N   connections held at once (default ${DEFAULT_MAX_CONNECTIONS}); more are closed at once
  --frame-timeout MS    a frame left incomplete this long closes its connection (default
                        ${DEFAULT_FRAME_TIMEOUT_MS}; 0 never)
  --idle-timeout MS     close connections idle this long (default ${DEFAULT_IDLE_TIMEOUT_MS}: never, because programs
                        keep /dev/nsm open for their whole life)
${BOOT_OPTIONS_HELP}
`;

/** The `--io` value: how the server reads and writes connections (see NsmServerOptions.io). */
export function parseIo(value: string | undefined): 'auto' | 'native' | 'node' {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'native' || value === 'node') return value;
  throw new UsageError(`--io ${value}: expected auto, native or node`);
}

/** `[HOST:]PORT`, `:PORT` or `[V6]:PORT` -> a TCP endpoint. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen '${value}': expected [HOST:]PORT with PORT in 0..65535, e.g. --listen 127.0.0.1:5005`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** An octal file mode such as 0600 or 660 (permission bits only). */
export function parseMode(option: string, value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new UsageError(`${option} '${value}': expected an octal mode such as 0600 or 0660`);
  return parseInt(value, 8);
}

/** A whole number >= min, or undefined when the option was not given. */
function parseCount(option: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${option} '${value}': expected a whole number >= ${min}`);
  }
  return Number(value);
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** One `--log` line: an exchange in the `rpc --json` form. */
export function exchangeLogLine(e: NsmExchange): string {
  const request = e.request === null ? { oversized: e.requestLength } : requestToJson(e.request);
  return JSON.stringify({ connection: e.connection, request, response: responseToJson(e.response) }) + '\n';
}

/** One `--log` line for a connection event. */
export function eventLogLine(e: NsmServerEvent): string {
  return JSON.stringify({ connection: e.connection, event: e.message }) + '\n';
}

/** One `--log` line (or plain stderr line) for an InternalError the device answered. */
export function internalErrorLine(e: InternalErrorEvent, json: boolean, command: string): string {
  const reason = describeReason(e.reason);
  return json
    ? JSON.stringify({ event: 'InternalError', request: e.request, reason }) + '\n'
    : `nsm-emulator ${command}: the device answered InternalError to ${e.request}: ${reason}\n`;
}

/**
 * Builds the device from boot flags; failures other than usage errors are reported plainly.
 * With `cli`, injected faults and EIF progress are reported on its standard error;
 * `onInternalError` hears why the device answered InternalError (the wire answer is unchanged).
 */
export async function deviceFromFlags(
  boot: BootFlags,
  cli?: { io: CliIo; command: string },
  onInternalError?: (e: InternalErrorEvent) => void,
): Promise<NsmDevice> {
  const options = await deviceOptionsFromFlags(boot, cli);
  return new NsmDevice(onInternalError ? { ...options, onInternalError } : options);
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({
    args,
    options: {
      ...BOOT_OPTION_SPEC,
      socket: { type: 'string', multiple: true },
      listen: { type: 'string', multiple: true },
      log: { type: 'boolean' },
      io: { type: 'string' },
      'socket-mode': { type: 'string' },
      'max-connections': { type: 'string' },
      'frame-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const { socket, listen, log, io: ioMode, 'socket-mode': socketMode, 'max-connections': maxConn, 'frame-timeout': frameTimeout, 'idle-timeout': idleTimeout, ...boot } = parsed.values;
  const mode = socketMode === undefined ? undefined : parseMode('--socket-mode', socketMode);
  const serveIo = parseIo(ioMode);
  const endpoints: Array<[string, NsmEndpoint]> = [];
  for (const p of socket ?? []) {
    if (p === '') throw new UsageError("--socket '': expected a file path for the Unix socket");
    endpoints.push([`--socket ${p}`, mode === undefined ? { path: p } : { path: p, mode }]);
  }
  for (const l of listen ?? []) endpoints.push([`--listen ${l}`, parseListen(l)]);
  if (endpoints.length === 0) throw new UsageError('nothing to listen on: give --socket PATH and/or --listen [HOST:]PORT');

  let device: NsmDevice;
  try {
    device = await deviceFromFlags(
      boot as BootFlags,
      { io, command: 'serve' },
      (e) => io.stderr.write(internalErrorLine(e, log === true, 'serve')),
    );
  } catch (e) {
    if (e instanceof UsageError) throw e;
    io.stderr.write(`nsm-emulator serve: cannot boot the device: ${(e as Error).message}\n`);
    return 1;
  }
  const server = new NsmServer(device, {
    maxConnections: parseCount('--max-connections', maxConn, 1),
    frameTimeoutMs: parseCount('--frame-timeout', frameTimeout, 0),
    idleTimeoutMs: parseCount('--idle-timeout', idleTimeout, 0),
    io: serveIo,
    onExchange: log ? (e) => io.stderr.write(exchangeLogLine(e)) : undefined,
    onEvent: (e) => {
      if (log) io.stderr.write(eventLogLine(e));
      else if (e.level === 'warn') io.stderr.write(`nsm-emulator serve: ${e.connection === 0 ? '' : `connection ${e.connection}: `}${e.message}\n`);
    },
  });

  const signal = stopSignal();
  try {
    for (const [flag, endpoint] of endpoints) {
      let address: string;
      try {
        address = await server.listen(endpoint);
      } catch (e) {
        // A path that cannot hold a socket (missing directory, ...) is a usage error.
        if (e instanceof SocketPathError) throw new UsageError(`${flag}: ${e.detail}`);
        if (e instanceof NativeBuildError) {
          io.stderr.write(`nsm-emulator serve: --io native: ${e.message}\n`);
          return 1;
        }
        const why = e instanceof AddressInUseError ? e.detail : (e as Error).message;
        io.stderr.write(`nsm-emulator serve: ${flag}: ${why}\n`);
        return 1;
      }
      if ('host' in endpoint && endpoint.host !== undefined && !isLoopback(endpoint.host)) {
        io.stderr.write(`nsm-emulator serve: warning: ${address} is reachable from other machines and has no authentication\n`);
      }
      io.stdout.write(address + '\n');
    }
    io.stderr.write(`nsm-emulator serve: module_id ${device.moduleId}; stop with Ctrl-C or SIGTERM\n`);
    await signal.stopped;
    return 0;
  } finally {
    signal.dispose();
    await server.close();
  }
}

export const command: CliCommand = {
  summary: 'serve one emulated NSM on a Unix socket and/or TCP port (length-prefixed CBOR)',
  help: HELP,
  run,
};

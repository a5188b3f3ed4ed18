/**
 * `nsm-emulator serve`: one emulated NSM shared by every client of a Unix socket and/or a TCP
 * port, spoken to with 4-byte length-prefixed raw CBOR frames (docs/server.md). Also holds the
 * helpers `exec` shares: endpoint parsing and the `--log` line format.
 * @module
 */
import { NsmDevice } from '../device/nsm-device.js';
import { AddressInUseError, type NsmEndpoint, type NsmExchange, type NsmServerEvent, NsmServer } from '../node/server.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags, deviceOptionsFromFlags } from './boot-options.js';
import { parseFlags } from './parse.js';
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
1 MiB closes that connection (reported on standard error).

Options:
  --socket PATH         listen on a Unix domain socket (repeatable); a stale socket file left by
                        a dead server is replaced, a live one is an error
  --listen [HOST:]PORT  listen on TCP (repeatable); HOST defaults to 127.0.0.1. There is no
                        authentication: listen on other interfaces only on trusted networks
  --log                 print every request and response on standard error as one JSON line
                        (the 'rpc --json' form), plus connection events
${BOOT_OPTIONS_HELP}
`;

/** `[HOST:]PORT`, `:PORT` or `[V6]:PORT` -> a TCP endpoint. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen '${value}': expected [HOST:]PORT with PORT in 0..65535, e.g. --listen 127.0.0.1:5005`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
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

/** Builds the device from boot flags; failures other than usage errors are reported plainly. */
export async function deviceFromFlags(boot: BootFlags): Promise<NsmDevice> {
  return new NsmDevice(await deviceOptionsFromFlags(boot));
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({
    args,
    options: {
      ...BOOT_OPTION_SPEC,
      socket: { type: 'string', multiple: true },
      listen: { type: 'string', multiple: true },
      log: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const { socket, listen, log, ...boot } = parsed.values;
  const endpoints: Array<[string, NsmEndpoint]> = [];
  for (const p of socket ?? []) {
    if (p === '') throw new UsageError("--socket '': expected a file path for the Unix socket");
    endpoints.push([`--socket ${p}`, { path: p }]);
  }
  for (const l of listen ?? []) endpoints.push([`--listen ${l}`, parseListen(l)]);
  if (endpoints.length === 0) throw new UsageError('nothing to listen on: give --socket PATH and/or --listen [HOST:]PORT');

  let device: NsmDevice;
  try {
    device = await deviceFromFlags(boot as BootFlags);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    io.stderr.write(`nsm-emulator serve: cannot boot the device: ${(e as Error).message}\n`);
    return 1;
  }
  const server = new NsmServer(device, {
    onExchange: log ? (e) => io.stderr.write(exchangeLogLine(e)) : undefined,
    onEvent: (e) => {
      if (log) io.stderr.write(eventLogLine(e));
      else if (e.level === 'warn') io.stderr.write(`nsm-emulator serve: connection ${e.connection}: ${e.message}\n`);
    },
  });

  // Stop on the first SIGINT/SIGTERM, including one arriving while still starting up.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (const [flag, endpoint] of endpoints) {
      let address: string;
      try {
        address = await server.listen(endpoint);
      } catch (e) {
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
    await stopped;
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await server.close();
  }
}

export const command: CliCommand = {
  summary: 'serve one emulated NSM on a Unix socket and/or TCP port (length-prefixed CBOR)',
  help: HELP,
  run,
};

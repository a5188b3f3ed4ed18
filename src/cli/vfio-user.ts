/**
 * `nsm-emulator vfio-user`: serves the emulated NSM as a virtio-nsm PCI function to a vfio-user
 * client (QEMU's `vfio-user-pci`), so an unmodified guest kernel's `nsm` driver finds it
 * (docs/virtio.md, "Running under QEMU with vfio-user").
 * @module
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { NsmDevice } from '../device/nsm-device.js';
import { VirtioNsmDevice } from '../virtio/virtio-nsm-device.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags, deviceOptionsFromFlags } from './boot-options.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { requestToJson, responseToJson } from './json-codec.js';
import { parseFlags } from './parse.js';
import { stopSignal } from './stop-signal.js';

const HELP = `Usage: nsm-emulator vfio-user --socket PATH [options]

Serves one emulated NSM as a virtio 1.x PCI function (vendor 0x1af4, device 0x1061) over the
vfio-user protocol, so that QEMU can give it to a guest whose own Linux 'nsm' driver then
registers /dev/nsm and the nsm-hwrng random source:

  qemu-system-x86_64 ... -device '{"driver":"vfio-user-pci","socket":{"type":"unix","path":"PATH"}}'

The socket is created with mode 0600 (a stale socket file of a dead server is replaced). One
client at a time; when it disconnects its memory mappings and interrupt descriptors are dropped
and the device keeps its state until the next client resets it. Guest memory is reached with
DMA_READ/DMA_WRITE messages, so no shared-memory backend is needed. Prints unix:PATH on standard
output once listening; stops on SIGINT or SIGTERM. A small C helper that holds the socket is
built with the system C compiler on first use (cached like the preload shim).

Options:
  --socket PATH         the Unix socket QEMU connects to (required)
  --queue-size N        largest virtqueue size offered (power of two, default 2 as QEMU)
  --log                 print every request and response on standard error as one JSON line
                        (the 'rpc --json' form plus the raw hex), device resets, and client events
  --trace               print every vfio-user message in and out on standard error (debugging)
${BOOT_OPTIONS_HELP}
`;

/** An NsmDevice that reports each exchange and reset (for --log). */
function loggingDevice(options: ConstructorParameters<typeof NsmDevice>[0], write: (line: string) => void): NsmDevice {
  class LoggingNsm extends NsmDevice {
    override async handleRaw(bytes: Uint8Array): Promise<Uint8Array> {
      const request = bytes.slice();
      const response = await super.handleRaw(bytes);
      let json: unknown = null;
      try {
        json = { request: requestToJson(request), response: responseToJson(response) };
      } catch {
        json = {};
      }
      write(JSON.stringify({ ...(json as object), requestHex: bytesToHex(request), responseHex: bytesToHex(response) }) + '\n');
      return response;
    }
    override reset(): void {
      super.reset();
      write(JSON.stringify({ event: 'reset' }) + '\n');
    }
  }
  return new LoggingNsm(options);
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({
    args,
    options: { ...BOOT_OPTION_SPEC, socket: { type: 'string' }, 'queue-size': { type: 'string' }, log: { type: 'boolean' }, trace: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  const { socket, log, trace, 'queue-size': queueSizeText, ...boot } = parsed.values;
  if (socket === undefined || socket === '') throw new UsageError('--socket PATH is required: the Unix socket QEMU connects to');
  let queueMaxSize = 2;
  if (queueSizeText !== undefined) {
    queueMaxSize = Number(queueSizeText);
    if (!/^\d+$/.test(queueSizeText) || queueMaxSize < 1 || queueMaxSize > 32768 || (queueMaxSize & (queueMaxSize - 1)) !== 0) {
      throw new UsageError(`--queue-size '${queueSizeText}': expected a power of two from 1 to 32768`);
    }
  }
  let device: VirtioNsmDevice;
  try {
    const options = await deviceOptionsFromFlags(boot as BootFlags, { io, command: 'vfio-user' });
    const nsm = log ? loggingDevice(options, (l) => io.stderr.write(l)) : new NsmDevice(options);
    device = new VirtioNsmDevice(nsm, { queueMaxSize, caReference: boot.ca ?? null });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    io.stderr.write(`nsm-emulator vfio-user: cannot boot the device: ${(e as Error).message}\n`);
    return 1;
  }

  const { VfioUserServer } = await import('../node/vfio-user-server.js');
  const signal = stopSignal();
  let server;
  try {
    try {
      server = await VfioUserServer.listen(device, socket, {
        log: (level, message) => {
          if (log) io.stderr.write(JSON.stringify({ event: message }) + '\n');
          else if (level === 'warn') io.stderr.write(`nsm-emulator vfio-user: ${message}\n`);
        },
        ...(trace ? { trace: (line: string) => io.stderr.write(`vfio-user ${line}\n`) } : {}),
      });
    } catch (e) {
      const detail = (e as { detail?: string }).detail ?? (e as Error).message;
      io.stderr.write(`nsm-emulator vfio-user: --socket ${socket}: ${detail}\n`);
      return 1;
    }
    io.stdout.write(`unix:${socket}\n`);
    io.stderr.write(`nsm-emulator vfio-user: module_id ${device.nsm.moduleId}; stop with Ctrl-C or SIGTERM\n`);
    await signal.stopped;
    return 0;
  } finally {
    signal.dispose();
    await server?.close();
  }
}

export const command: CliCommand = {
  summary: 'serve the NSM as a virtio PCI device to QEMU over vfio-user',
  help: HELP,
  run,
};

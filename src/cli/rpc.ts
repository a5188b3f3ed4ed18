/**
 * `nsm-emulator rpc`: one emulated device per process, driven through stdin/stdout, one raw
 * request per line. Tools outside this code rely on this interface: keep it stable.
 * @module
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { describeReason } from '../device/error-code.js';
import { type InternalErrorEvent, NsmDevice } from '../device/nsm-device.js';
import { NsmDeviceGoneError } from '../device/faults.js';
import { BOOT_OPTIONS_HELP, BOOT_OPTION_SPEC, type BootFlags, deviceOptionsFromFlags } from './boot-options.js';
import { type CliCommand, type CliIo, UsageError } from './io.js';
import { jsonToRequest, responseToJson } from './json-codec.js';
import { toHex, parseFlags } from './parse.js';
import { INPUT_LIMITS } from './files.js';

const HELP = `Usage: nsm-emulator rpc [options]

Runs one emulated NSM and answers requests read from standard input, one per line, in order.
Device state (PCRs, locks) persists from line to line; the command exits 0 at end of input
(1 if a --fault made the device disappear: it stops there, without answering that line).

Hex mode (default): each line is one raw CBOR request in hex (whitespace inside a line is
ignored, blank lines are skipped); each answer is one line of lowercase hex holding the raw
CBOR response. A line that is not hex gets a message on standard error and no answer.

  $ echo 6b44657363726962654e534d | nsm-emulator rpc --seed 01
  a16b44657363726962654e534da7...

JSON mode (--json): each line is one JSON value in serde's externally tagged shape of
nsm-api's types, with byte strings as hex, and each answer is one JSON line in the same form:
  "DescribeNSM"                                  "GetRandom"
  {"DescribePCR":{"index":0}}                    {"LockPCR":{"index":16}}
  {"ExtendPCR":{"index":16,"data":"010203"}}     {"LockPCRs":{"range":32}}
  {"Attestation":{"user_data":"aa","nonce":null,"public_key":null}}
Answers: {"DescribePCR":{"lock":true,"data":"00..."}}, "LockPCR", {"Error":"ReadOnlyIndex"}, ...
Strings under data, user_data, nonce and public_key are hex; other strings are text. Any
shape can be sent (the device answers malformed ones with an Error), so error paths can be
tried from JSON too. A line that is not JSON gets a message on standard error and no answer.
A line longer than ${INPUT_LIMITS.line} characters is not read into memory: it gets a message and
no answer.

Options:
  --json                JSON in and out instead of hex
${BOOT_OPTIONS_HELP}
`;

const HEX_LINE = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Lines of a stream (LF or CRLF), each at most `max` bytes. A longer line is yielded as null as
 * soon as it passes `max`, and the rest of it is discarded as it arrives, so memory stays
 * bounded whatever the input.
 */
export async function* boundedLines(stream: AsyncIterable<unknown>, max: number): AsyncGenerator<string | null> {
  const decoder = new TextDecoder();
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false; // inside a line already reported as too long
  const line = (last: Buffer): string => {
    const whole = parts.length === 0 ? last : Buffer.concat([...parts, last]);
    parts = [];
    size = 0;
    const end = whole.length > 0 && whole[whole.length - 1] === 0x0d ? whole.length - 1 : whole.length;
    return decoder.decode(whole.subarray(0, end));
  };
  for await (const c of stream) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array);
    let start = 0;
    while (start <= chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      if (!skipping && size + piece.length > max) {
        skipping = true;
        parts = [];
        size = 0;
        yield null;
      }
      if (nl === -1) {
        if (!skipping && piece.length > 0) {
          parts.push(Buffer.from(piece));
          size += piece.length;
        }
        break;
      }
      if (skipping) skipping = false;
      else yield line(piece);
      start = nl + 1;
    }
  }
  if (size > 0) yield line(Buffer.alloc(0));
}

async function run(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlags({ args, options: { ...BOOT_OPTION_SPEC, json: { type: 'boolean' } }, strict: true, allowPositionals: false });
  const { json, ...boot } = parsed.values;
  let n = 0;
  // The answer on stdout stays the device's exact bytes; why it is an InternalError goes to stderr.
  const onInternalError = (e: InternalErrorEvent) =>
    io.stderr.write(`nsm-emulator rpc: stdin line ${n}: the device answered InternalError to ${e.request}: ${describeReason(e.reason)}\n`);
  const options = await deviceOptionsFromFlags(boot as BootFlags, { io, command: 'rpc' });
  const device = new NsmDevice({ ...options, onInternalError });
  for await (const line of boundedLines(io.stdin, INPUT_LIMITS.line)) {
    n++;
    if (line === null) {
      io.stderr.write(`nsm-emulator rpc: stdin line ${n}: longer than ${INPUT_LIMITS.line} characters (a request is at most 4096 bytes); skipped unread, no request sent\n`);
      continue;
    }
    let request: Uint8Array;
    if (json) {
      if (line.trim() === '') continue;
      try {
        request = jsonToRequest(line);
      } catch (e) {
        io.stderr.write(`nsm-emulator rpc: stdin line ${n}: ${(e as Error).message}; no request sent\n`);
        continue;
      }
    } else {
      const hex = line.replace(/\s+/g, '');
      if (hex === '') continue;
      if (!HEX_LINE.test(hex)) {
        io.stderr.write(`nsm-emulator rpc: stdin line ${n}: expected hex bytes (an even number of 0-9a-f digits); no request sent\n`);
        continue;
      }
      request = hexToBytes(hex);
    }
    let response: Uint8Array;
    try {
      response = await device.handleRaw(request);
    } catch (e) {
      if (!(e instanceof NsmDeviceGoneError)) throw e;
      // Like a server closing the connection: no answer, no more input read, exit 1.
      io.stderr.write(`nsm-emulator rpc: stdin line ${n}: ${e.message}; no answer, exiting\n`);
      return 1;
    }
    io.stdout.write((json ? JSON.stringify(responseToJson(response)) : toHex(response)) + '\n');
  }
  return 0;
}

export const command: CliCommand = {
  summary: 'answer raw NSM requests from stdin (hex or JSON lines), one device per process',
  help: HELP,
  run,
};

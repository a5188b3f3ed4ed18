/**
 * Parsing of command-line values. Every failure is a {@link UsageError} naming the option,
 * the value given and what was expected.
 * @module
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { hexToBytes } from '@noble/hashes/utils.js';
import { MAX_PCRS, PCR_LENGTH } from '../device/limits.js';
import { UsageError } from './io.js';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Hex bytes (whitespace and an optional 0x ignored). */
export function parseHex(option: string, value: string): Uint8Array {
  let s = value.replace(/\s+/g, '');
  if (s.startsWith('0x') || s.startsWith('0X')) s = s.slice(2);
  if (!HEX.test(s)) throw new UsageError(`${option} '${value}': expected hex bytes (an even number of 0-9a-f digits)`);
  return hexToBytes(s);
}

/** `N=HEX` with N < 32 and HEX exactly 48 bytes. */
export function parsePcr(option: string, value: string): [number, Uint8Array] {
  const m = /^(\d+)=(.*)$/s.exec(value);
  if (!m) throw new UsageError(`${option} '${value}': expected N=HEX, e.g. ${option} 16=${'00'.repeat(PCR_LENGTH)}`);
  const index = Number(m[1]);
  if (index >= MAX_PCRS) throw new UsageError(`${option} '${value}': PCR index ${index} is not in 0..${MAX_PCRS - 1}`);
  const data = parseHex(option, m[2]!);
  if (data.length !== PCR_LENGTH) {
    throw new UsageError(`${option} '${value}': PCR ${index} value is ${data.length} bytes, expected ${PCR_LENGTH} (96 hex digits)`);
  }
  return [index, data];
}

/** An instant as milliseconds: ISO 8601, or Unix seconds (fractions allowed). */
export function parseTime(option: string, value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`${option} '${value}': expected an ISO 8601 time (2026-01-03T20:41:07Z) or Unix seconds`);
  return ms;
}

/** Lowercase hex of some bytes (Buffer's native encoder: a document is kilobytes). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * `--name VALUE` where the option takes a value and VALUE starts with '-' (a kernel command line
 * such as "-x ...", a negative number) becomes `--name=VALUE`: node:util refuses the split form
 * as ambiguous, getopt-style tools take the next argument as the value. Stops at `--`.
 */
function joinDashValues(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return out.concat(args.slice(i));
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : null;
    const next = args[i + 1];
    if (name !== null && options[name]?.type === 'string' && next !== undefined && next.startsWith('-') && next !== '--') {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * node:util parseArgs, with its errors (unknown option, missing value) turned into UsageErrors
 * of one line (parseArgs adds hint lines; the first names the option and the problem).
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config.args ? { ...config, args: joinDashValues(config.args, config.options ?? {}) } : config);
  } catch (e) {
    throw new UsageError(parseArgsProblem(e as NodeJS.ErrnoException));
  }
}

/** node:util's parse errors in this CLI's words: the option, then what was expected. */
function parseArgsProblem(e: NodeJS.ErrnoException): string {
  const first = e.message.split('\n')[0]!;
  // node:util quotes the argument and follows the closing quote with '.' or ' argument missing'.
  const unknown = /^Unknown option '(.*?)'(?:\. |$)/.exec(first)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown !== undefined) {
    const name = unknown.split('=')[0]!;
    return name === '--help' ? '--help takes no value' : `unknown option ${name} (--help lists the options)`;
  }
  const positional = /^Unexpected argument '(.*?)'(?:\. |$)/.exec(first)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && positional !== undefined) {
    return `unexpected argument '${positional}': this command takes options only (--help lists them)`;
  }
  const option = /^Option '(-[^ ']*)/.exec(first)?.[1];
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option !== undefined) {
    if (/' argument missing$/.test(first)) return `${option}: a value is required`;
    if (/' does not take an argument$/.test(first)) return `${option} takes no value`;
  }
  return first;
}

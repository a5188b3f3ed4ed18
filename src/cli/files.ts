/**
 * Files the CLI reads and writes: every input is read with a size cap fitting what it holds
 * (checked while reading, so /dev/zero or an endless pipe cannot exhaust memory), and every
 * file-system failure becomes a one-line {@link UsageError} naming the file and the problem.
 * @module
 */
// node:fs's lazy `promises` (not node:fs/promises): a command that writes no file never loads it.
import { promises as fsp, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputTooLargeError, formatSize, readFileBounded, readRegularFileBoundedSync, readStreamBounded } from '../node/bounded-read.js';
import { type CliIo, UsageError } from './io.js';

/** Size caps of CLI inputs, in bytes. */
export const INPUT_LIMITS = {
  /** An attestation document file (raw CBOR, hex or base64 text of at most a ~16 KiB document). */
  document: 64 * 1024,
  /** A PEM certificate or key file (a few KiB; room for comments and a short chain). */
  pem: 64 * 1024,
  /** A JSON file given as an option (docker-info). */
  json: 1024 * 1024,
  /** One line of `rpc` input (a request is at most 4096 bytes: 8192 hex digits). */
  line: 64 * 1024,
} as const;

export { formatSize };

/** Why a file operation failed, in words ("directory /x does not exist", "permission denied"). */
export function fileProblem(e: unknown, path: string, writing = false): string {
  const code = (e as NodeJS.ErrnoException).code ?? '';
  const dir = dirname(path);
  const dirMissing = () => {
    try {
      statSync(dir);
      return false;
    } catch {
      return true;
    }
  };
  switch (code) {
    case 'ENOENT':
      if (dirMissing()) return `directory ${dir} does not exist`;
      return writing ? 'cannot be created (ENOENT)' : 'file not found';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return `cannot be ${writing ? 'written' : 'read'} (${code || String(e)})`;
  }
}

/**
 * Reads `path` (or standard input for `-` when `io` is given), at most `limit` bytes.
 * `label` names the input in messages (e.g. `--root FILE`); `what` says what was expected.
 */
export async function readInput(label: string, path: string, limit: number, what: string, io?: CliIo): Promise<Uint8Array> {
  try {
    if (path === '-' && io) return await readStreamBounded(io.stdin, limit);
    // A regular file (the usual case) synchronously; pipes and devices through the async reader.
    return readRegularFileBoundedSync(path, limit) ?? (await readFileBounded(path, limit));
  } catch (e) {
    if (e instanceof InputTooLargeError) throw new UsageError(`${label}: ${e.message} (expected ${what})`);
    if ((e as NodeJS.ErrnoException).code === undefined) throw e;
    throw new UsageError(`${label}: ${fileProblem(e, path)}`);
  }
}

/** Writes `data` to `path`; failures become a one-line UsageError naming `label`. */
export async function writeOutput(label: string, path: string, data: Uint8Array | string): Promise<void> {
  try {
    await fsp.writeFile(path, data);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === undefined) throw e;
    throw new UsageError(`${label}: ${fileProblem(e, path, true)}`);
  }
}

/**
 * The file-backed {@link ChainStore} (Node only): one small file per derived intermediate
 * certificate, in a private directory ($XDG_CACHE_HOME/nsm-emulator/chain or
 * ~/.cache/nsm-emulator/chain by default), so that each new process (a CLI command) does not
 * sign the regional, zonal and instance certificates again. What a file holds and how it is
 * checked before use is in src/attestation/chain-store.ts: a file can only be used for the very
 * certificate it was written for, and documents are byte-identical with or without the cache.
 *
 * Files are named by the SHA-256 of their key, hold exactly {@link CHAIN_ENTRY_SIZE} bytes
 * (anything else is ignored without being read), are never followed through a symbolic link, and
 * are written as the CA files are (./private-files.ts): the directory 0700, each file 0600 through
 * a fresh O_EXCL|O_NOFOLLOW temporary file renamed into place. Problems (a directory that cannot
 * be created, a planted symbolic link) are reported through `onError` and never fail a document:
 * the certificate is then simply made in memory.
 * @module
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, promises as fsp, readSync } from 'node:fs';
import { join } from 'node:path';
import { CHAIN_ENTRY_SIZE, type ChainStore } from '../attestation/chain-store.js';
import { defaultCacheDir } from './cache-dir.js';
import { PrivateFileError, ensurePrivateDir, writeFileExclusive } from './private-files.js';

/** The environment variable the CLI reads: `off` disables the cache, an absolute path moves it. */
export const CHAIN_CACHE_ENV = 'NSM_EMULATOR_CHAIN_CACHE';

/** The default directory of the certificate cache. */
export function defaultChainCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultCacheDir(env), 'chain');
}

/** A problem with the cache, naming the path at fault. */
export class ChainCacheError extends Error {
  override readonly name = 'ChainCacheError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

export interface FileChainStoreOptions {
  /** Told about each problem (the document is made anyway). Default: ignored. */
  readonly onError?: (error: ChainCacheError) => void;
  /**
   * Most entries kept (default {@link CHAIN_CACHE_MAX_ENTRIES}): after a write that goes past
   * it, the least recently written are removed down to three quarters of it.
   */
  readonly maxEntries?: number;
}

/** Default bound on the entries in the directory (a CA adds about five a day). */
export const CHAIN_CACHE_MAX_ENTRIES = 256;

const ENTRY_NAME = /^[0-9a-f]{64}\.bin$/;

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** A {@link ChainStore} keeping its entries as files in `dir` (created 0700 on first write). */
export function fileChainStore(dir: string, options: FileChainStoreOptions = {}): ChainStore {
  const report = (path: string, detail: string) => options.onError?.(new ChainCacheError(path, detail));
  const fileOf = (key: string) => join(dir, `${createHash('sha256').update(key).digest('hex')}.bin`);
  let ready: Promise<boolean> | null = null;
  const max = options.maxEntries ?? CHAIN_CACHE_MAX_ENTRIES;
  /** Removes the oldest entries once there are more than `max` (only names this store writes). */
  const prune = async () => {
    const names = (await fsp.readdir(dir)).filter((n) => ENTRY_NAME.test(n));
    if (names.length <= max) return;
    const aged: Array<[string, number]> = [];
    for (const n of names) {
      const st = await fsp.stat(join(dir, n)).catch(() => null);
      if (st) aged.push([n, st.mtimeMs]);
    }
    aged.sort((a, b) => a[1] - b[1]);
    for (const [n] of aged.slice(0, aged.length - Math.floor((max * 3) / 4))) await fsp.unlink(join(dir, n)).catch(() => undefined);
  };
  return {
    get(key) {
      // Synchronous: a 241-byte read on a command's start costs far less this way than through
      // node:fs/promises (which a command would load for it) and the thread pool.
      const path = fileOf(key);
      let fd;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (e) {
        const c = code(e);
        if (c === 'ELOOP') report(path, 'is a symbolic link; not followed (the certificate is made again and the link replaced)');
        else if (c !== 'ENOENT' && c !== 'ENOTDIR') report(path, `cannot be read (${c})`);
        return null;
      }
      try {
        const st = fstatSync(fd);
        // A regular file of exactly an entry's size; anything else is not read at all.
        if (!st.isFile() || st.size !== CHAIN_ENTRY_SIZE) return null;
        const out = new Uint8Array(CHAIN_ENTRY_SIZE);
        return readSync(fd, out, 0, CHAIN_ENTRY_SIZE, 0) === CHAIN_ENTRY_SIZE ? out : null;
      } catch (e) {
        report(path, `cannot be read (${code(e)})`);
        return null;
      } finally {
        closeSync(fd);
      }
    },
    async put(key, value) {
      if (value.length !== CHAIN_ENTRY_SIZE) return;
      ready ??= ensurePrivateDir(dir).then(
        () => true,
        (e: unknown) => {
          report(e instanceof PrivateFileError ? e.path : dir, e instanceof PrivateFileError ? e.detail : String(e));
          return false;
        },
      );
      if (!(await ready)) return;
      try {
        await writeFileExclusive(fileOf(key), value, 0o600);
      } catch (e) {
        if (e instanceof PrivateFileError) report(e.path, e.detail);
        else report(fileOf(key), String(e));
        return;
      }
      await prune().catch((e: unknown) => report(dir, `cannot be pruned (${code(e)})`));
    },
  };
}

/**
 * Builds the package's native helpers (native/*.c: the /dev/nsm preload shim and the seccomp
 * supervisor) with the system C compiler, on demand, into a per-user cache. The file name carries
 * a hash of the source, the local headers it includes, the compiler and the flags, so an edited
 * source or another compiler gets its own build and a cached build is reused as is.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from './cache-dir.js';

/** What to build: one C file into a shared library or an executable. */
export interface NativeProgram {
  /** Base of the output file name (`nsm-shim` -> `nsm-shim-<hash>.so`). */
  readonly name: string;
  /** What it is, for messages (`the /dev/nsm preload shim`). */
  readonly title: string;
  /** Source file name in native/. */
  readonly file: string;
  /** Output file suffix (`.so`, or '' for an executable). */
  readonly suffix: string;
  /** Compiler flags; part of the cache key. */
  readonly cflags: readonly string[];
  /** Libraries; part of the cache key. */
  readonly libs: readonly string[];
}

/** Thrown when a native helper cannot be built: no compiler, a compile error, or an unsafe cache directory. */
export class NativeBuildError extends Error {
  override readonly name = 'NativeBuildError';
}

export interface NativeBuildOptions {
  /** Directory for built files (default: $XDG_CACHE_HOME/nsm-emulator or ~/.cache/nsm-emulator). */
  readonly cacheDir?: string;
  /** Compiler command, may include arguments (default: $CC, else `cc`). */
  readonly cc?: string;
  /** Source file (default: the program's file in this package's native/ directory). */
  readonly source?: string;
  /** Build even when a cached file exists. */
  readonly rebuild?: boolean;
}

/** This package's native/ directory. */
export function nativeDir(): string {
  // src/node/ (tests) and dist/node/ (package) are both two levels below the package root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native');
}

/** The default cache directory for this user (see cache-dir.ts). */
export function defaultNativeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return defaultCacheDir(env);
}

/** The local headers (`#include "x.h"`, found in native/) a source uses, with their contents. */
function localHeaders(code: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const m of code.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
    const path = join(nativeDir(), m[1]!);
    try {
      out.push([m[1]!, readFileSync(path)]);
    } catch (e) {
      throw new NativeBuildError(`cannot read the header ${path}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** Path of the built program for these options, building it first when it is not cached. */
export async function buildNative(program: NativeProgram, options: NativeBuildOptions = {}): Promise<string> {
  if (process.platform !== 'linux') {
    throw new NativeBuildError(`${program.title} works on Linux only (this is ${process.platform})`);
  }
  const source = options.source ?? join(nativeDir(), program.file);
  let code: Buffer;
  try {
    code = readFileSync(source);
  } catch (e) {
    throw new NativeBuildError(`cannot read the source of ${program.title}, ${source}: ${(e as Error).message}`);
  }
  const ccWords = (options.cc ?? process.env['CC'] ?? 'cc').trim().split(/\s+/).filter(Boolean);
  if (ccWords.length === 0) throw new NativeBuildError('the C compiler command is empty (check $CC)');
  const hash = createHash('sha256').update(code);
  for (const [name, text] of localHeaders(code.toString('latin1'))) hash.update('\0' + name + '\0').update(text);
  const key = hash
    .update('\0' + ccWords.join(' ') + '\0' + program.cflags.join(' ') + '\0' + program.libs.join(' ') + '\0' + process.arch)
    .digest('hex')
    .slice(0, 20);
  const dir = options.cacheDir ?? defaultNativeCacheDir();
  ensurePrivateDir(dir);
  const out = join(dir, `${program.name}-${key}${program.suffix}`);
  if (!options.rebuild && existsSync(out)) return out;

  const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const [cc, ...ccArgs] = ccWords as [string, ...string[]];
  const args = [...ccArgs, ...program.cflags, '-I', nativeDir(), '-o', tmp, source, ...program.libs];
  try {
    await new Promise<void>((resolvePromise, reject) => {
      process.getBuiltinModule('node:child_process').execFile(cc, args, { timeout: 120_000 }, (err, _stdout, stderr) => {
        if (!err) return resolvePromise();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(
            new NativeBuildError(
              `no C compiler: '${cc}' was not found. ${capitalize(program.title)} is built from C source on first use; ` +
                `install a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev; Alpine: apk add gcc musl-dev; ` +
                `Fedora: dnf install gcc) or point $CC at one`,
            ),
          );
        } else {
          reject(new NativeBuildError(`compiling ${source} with '${ccWords.join(' ')}' failed:\n${String(stderr).trim() || err.message}`));
        }
      });
    });
    renameSync(tmp, out); // atomic: concurrent builders each install a complete file
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Creates dir (0700) if needed and refuses one another user could plant a program in. */
function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new NativeBuildError(`cannot create the cache directory ${dir}: ${(e as Error).message}`);
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new NativeBuildError(`cache ${dir} is not a directory`);
  if (uid !== undefined && st.uid !== uid) {
    throw new NativeBuildError(`cache ${dir} belongs to uid ${st.uid}, not to this user (${uid}); set XDG_CACHE_HOME`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new NativeBuildError(`cache ${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}); fix it with chmod 700`);
  }
}

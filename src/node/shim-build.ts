/**
 * Builds the /dev/nsm preload shim (native/nsm-shim.c) with the system C compiler, on demand,
 * into a per-user cache. The file name carries a hash of the source, compiler and flags, so an
 * edited source or another compiler gets its own build and a cached build is reused as is.
 * @module
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Compiler flags; part of the cache key. */
export const SHIM_CFLAGS: readonly string[] = ['-shared', '-fPIC', '-O2', '-Wall', '-fvisibility=hidden', '-U_FORTIFY_SOURCE'];
/** Libraries; part of the cache key (both are empty stubs in glibc 2.34+, needed before). */
export const SHIM_LIBS: readonly string[] = ['-ldl', '-pthread'];

/** Environment variables the shim reads. */
export const SHIM_ENV = {
  /** Server address: a Unix socket path (or `unix:PATH`), or `tcp:HOST:PORT`. */
  socket: 'NSM_EMULATOR_SOCKET',
  /** The device path to intercept (default /dev/nsm). */
  device: 'NSM_EMULATOR_DEVICE',
  /** Per-ioctl timeout in milliseconds (default 120000). */
  timeout: 'NSM_EMULATOR_TIMEOUT_MS',
} as const;

/** Thrown when the shim cannot be built: no compiler, a compile error, or an unsafe cache directory. */
export class ShimBuildError extends Error {
  override readonly name = 'ShimBuildError';
}

export interface ShimBuildOptions {
  /** Directory for built libraries (default: $XDG_CACHE_HOME/nsm-emulator or ~/.cache/nsm-emulator). */
  readonly cacheDir?: string;
  /** Compiler command, may include arguments (default: $CC, else `cc`). */
  readonly cc?: string;
  /** Shim source file (default: native/nsm-shim.c of this package). */
  readonly source?: string;
  /** Build even when a cached library exists. */
  readonly rebuild?: boolean;
}

/** Path of the shim's C source in this package. */
export function shimSourcePath(): string {
  // src/node/ (tests) and dist/node/ (package) are both two levels below the package root.
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'nsm-shim.c');
}

/** The default cache directory for this user. */
export function defaultShimCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg && xdg.startsWith('/')) return join(xdg, 'nsm-emulator');
  const home = env['HOME'] || safeHomedir();
  if (home) return join(home, '.cache', 'nsm-emulator');
  return join(tmpdir(), `nsm-emulator-${process.getuid?.() ?? 'user'}`);
}

function safeHomedir(): string {
  try {
    return homedir();
  } catch {
    return '';
  }
}

/** Path of the built shim for these options, building it first when it is not cached. */
export async function buildShim(options: ShimBuildOptions = {}): Promise<string> {
  if (process.platform !== 'linux') {
    throw new ShimBuildError(`the /dev/nsm preload shim works on Linux only (this is ${process.platform})`);
  }
  const source = options.source ?? shimSourcePath();
  let code: Buffer;
  try {
    code = readFileSync(source);
  } catch (e) {
    throw new ShimBuildError(`cannot read the shim source ${source}: ${(e as Error).message}`);
  }
  const ccWords = (options.cc ?? process.env['CC'] ?? 'cc').trim().split(/\s+/).filter(Boolean);
  if (ccWords.length === 0) throw new ShimBuildError('the C compiler command is empty (check $CC)');
  const key = createHash('sha256')
    .update(code)
    .update('\0' + ccWords.join(' ') + '\0' + SHIM_CFLAGS.join(' ') + '\0' + SHIM_LIBS.join(' ') + '\0' + process.arch)
    .digest('hex')
    .slice(0, 20);
  const dir = options.cacheDir ?? defaultShimCacheDir();
  ensurePrivateDir(dir);
  const out = join(dir, `nsm-shim-${key}.so`);
  if (!options.rebuild && existsSync(out)) return out;

  const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const [cc, ...ccArgs] = ccWords as [string, ...string[]];
  try {
    await new Promise<void>((resolvePromise, reject) => {
      execFile(cc, [...ccArgs, ...SHIM_CFLAGS, '-o', tmp, source, ...SHIM_LIBS], { timeout: 120_000 }, (err, _stdout, stderr) => {
        if (!err) return resolvePromise();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(
            new ShimBuildError(
              `no C compiler: '${cc}' was not found. The /dev/nsm shim is built from C source on first use; ` +
                `install a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev; Alpine: apk add gcc musl-dev; ` +
                `Fedora: dnf install gcc) or point $CC at one`,
            ),
          );
        } else {
          reject(new ShimBuildError(`compiling ${source} with '${ccWords.join(' ')}' failed:\n${String(stderr).trim() || err.message}`));
        }
      });
    });
    renameSync(tmp, out); // atomic: concurrent builders each install a complete file
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}

/** Creates dir (0700) if needed and refuses one another user could plant a library in. */
function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new ShimBuildError(`cannot create the shim cache directory ${dir}: ${(e as Error).message}`);
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new ShimBuildError(`shim cache ${dir} is not a directory`);
  if (uid !== undefined && st.uid !== uid) {
    throw new ShimBuildError(`shim cache ${dir} belongs to uid ${st.uid}, not to this user (${uid}); set XDG_CACHE_HOME`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new ShimBuildError(`shim cache ${dir} is writable by other users (mode ${(st.mode & 0o777).toString(8)}); fix it with chmod 700`);
  }
}

/**
 * The /dev/nsm preload shim (native/nsm-shim.c): its build recipe, built on demand and cached by
 * ./native-build.ts, and the environment variables it reads.
 * @module
 */
import { join } from 'node:path';
import { type NativeBuildOptions, type NativeProgram, NativeBuildError, buildNative, defaultNativeCacheDir, nativeDir } from './native-build.js';

/** Compiler flags; part of the cache key. */
export const SHIM_CFLAGS: readonly string[] = ['-shared', '-fPIC', '-O2', '-Wall', '-fvisibility=hidden', '-U_FORTIFY_SOURCE'];
/** Libraries; part of the cache key (both are empty stubs in glibc 2.34+, needed before). */
export const SHIM_LIBS: readonly string[] = ['-ldl', '-pthread'];

/** Environment variables the shim (and the seccomp supervisor) read. */
export const SHIM_ENV = {
  /** Server address: a Unix socket path (or `unix:PATH`), or `tcp:HOST:PORT`. */
  socket: 'NSM_EMULATOR_SOCKET',
  /** The device path to intercept (default /dev/nsm; the shim only). */
  device: 'NSM_EMULATOR_DEVICE',
  /** Per-ioctl timeout in milliseconds (default 120000). */
  timeout: 'NSM_EMULATOR_TIMEOUT_MS',
} as const;

export const SHIM_PROGRAM: NativeProgram = {
  name: 'nsm-shim',
  title: 'the /dev/nsm preload shim',
  file: 'nsm-shim.c',
  suffix: '.so',
  cflags: SHIM_CFLAGS,
  libs: SHIM_LIBS,
};

/** Thrown when the shim cannot be built (the same class as every native build error). */
export const ShimBuildError = NativeBuildError;
export type ShimBuildError = NativeBuildError;
export type ShimBuildOptions = NativeBuildOptions;

/** Path of the shim's C source in this package. */
export function shimSourcePath(): string {
  return join(nativeDir(), SHIM_PROGRAM.file);
}

/** The default cache directory for this user. */
export const defaultShimCacheDir = defaultNativeCacheDir;

/** Path of the built shim for these options, building it first when it is not cached. */
export function buildShim(options: ShimBuildOptions = {}): Promise<string> {
  return buildNative(SHIM_PROGRAM, options);
}

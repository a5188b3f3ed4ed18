/**
 * The environment a child process needs to reach an emulated NSM through the preload shim:
 * LD_PRELOAD with the shim in front, and NSM_EMULATOR_SOCKET naming the server.
 * @module
 */
import { SHIM_ENV } from './shim-build.js';

/**
 * A copy of `base` in which the shim at `shimPath` is preloaded (before any libraries already
 * listed in LD_PRELOAD) and /dev/nsm is served by the server at `address` (a Unix socket path,
 * `unix:PATH` or `tcp:HOST:PORT`, e.g. what `NsmServer.listen` returned).
 */
export function shimEnvironment(shimPath: string, address: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (/[\s:]/.test(shimPath)) throw new RangeError(`LD_PRELOAD cannot hold a path with spaces or colons: ${shimPath}`);
  const env: NodeJS.ProcessEnv = { ...base };
  const existing = (base['LD_PRELOAD'] ?? '').split(/[\s:]+/).filter((p) => p !== '' && p !== shimPath);
  env['LD_PRELOAD'] = [shimPath, ...existing].join(':');
  env[SHIM_ENV.socket] = address;
  return env;
}

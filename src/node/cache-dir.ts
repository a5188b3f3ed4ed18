/**
 * The per-user cache directory (Node only): $XDG_CACHE_HOME/nsm-emulator, else
 * ~/.cache/nsm-emulator, else a per-user name in the temporary directory. Built native helpers
 * (native-build.ts) and derived certificates (chain-cache.ts) live below it.
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** node:os, loaded only when HOME is unset (a command's start need not load it). */
const os = () => process.getBuiltinModule('node:os');

/** The default cache directory for this user. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg && xdg.startsWith('/')) return join(xdg, 'nsm-emulator');
  const home = env['HOME'] || safeHomedir();
  if (home) return join(home, '.cache', 'nsm-emulator');
  return join(os().tmpdir(), `nsm-emulator-${process.getuid?.() ?? 'user'}`);
}

function safeHomedir(): string {
  try {
    return os().homedir();
  } catch {
    return '';
  }
}

/**
 * True when {@link defaultCacheDir} would lie under a HOME that does not exist (system users often
 * have HOME=/nonexistent): a cache that is only an optimization is then better left unused than
 * created, home directory and all.
 */
export function defaultCacheDirHomeMissing(env: NodeJS.ProcessEnv = process.env): boolean {
  const xdg = env['XDG_CACHE_HOME'];
  const home = env['HOME'];
  return !(xdg && xdg.startsWith('/')) && !!home && !existsSync(home);
}

/**
 * How the NSM socket server binds its addresses (Node only). A Unix socket file is created with
 * exactly the mode asked for (0600 by default) whatever the umask, and is never reachable
 * through a wider mode, not even for an instant: the bind runs under umask 0177 (bind is
 * synchronous, so nothing else in the process runs meanwhile) and the mode is then set exactly.
 * Where the umask cannot be changed (a worker thread), the socket is bound inside a fresh 0700
 * directory next to the target, given its mode there and hard-linked into place.
 * @module
 */
import { chmodSync, linkSync, lstatSync, mkdtempSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, join } from 'node:path';

/** Thrown when another live server already owns the address, or the path holds something else. */
export class AddressInUseError extends Error {
  override readonly name = 'AddressInUseError';
  constructor(
    readonly address: string,
    readonly detail: string,
  ) {
    super(`${address}: ${detail}`);
  }
}

/** Thrown when a Unix socket cannot be created at a path: missing directory, permissions, length. */
export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

/** A Unix socket file a listener created, with its identity, to remove on close. */
export interface SocketFile {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
}

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with the terminating NUL). */
const SUN_PATH_MAX = 107;

/** Starts `server` listening through `start`; address-in-use becomes {@link AddressInUseError}. */
export function listenOn(server: Server, address: string, start: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (e.code === 'EADDRINUSE') reject(new AddressInUseError(address, 'already in use'));
      else reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    start(onListening);
  });
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** The reason a directory cannot hold a new socket, in words, or null when it can be tried. */
function directoryProblem(dir: string): string | null {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
    return null;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') return `directory ${dir} does not exist`;
    if (code === 'ENOTDIR') return `${dir} is not a directory (a part of it is a file)`;
    if (code === 'EACCES') return `directory ${dir} cannot be reached (permission denied)`;
    return `directory ${dir} cannot be used (${code})`;
  }
}

/**
 * Listens on a Unix socket at `path` whose file has exactly `mode`. A stale socket file left by
 * a dead server is replaced; a live one, or a path holding something else, is an
 * {@link AddressInUseError}; an unusable directory is a {@link SocketPathError}.
 */
export async function listenUnix(server: Server, path: string, mode: number): Promise<SocketFile> {
  const address = `unix:${path}`;
  // Checked first: the kernel keeps at most SUN_PATH_MAX bytes of a socket's path, and a longer
  // one would be bound at a cut-short path.
  const bytes = Buffer.byteLength(path);
  if (bytes > SUN_PATH_MAX) throw new SocketPathError(path, `the path is ${bytes} bytes, too long for a Unix socket (Linux allows ${SUN_PATH_MAX})`);
  const dir = dirname(path);
  const problem = directoryProblem(dir);
  if (problem) throw new SocketPathError(path, problem);
  await clearStaleSocket(path, address);
  try {
    if (!(await bindWithUmask(server, path, address))) await bindInPrivateDir(server, path, address, dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new SocketPathError(path, `cannot create files in ${dir} (${code})`);
    if (code === 'ENAMETOOLONG' || code === 'EINVAL') throw new SocketPathError(path, `the path is too long for a Unix socket (Linux allows ${SUN_PATH_MAX} bytes)`);
    throw e;
  }
  try {
    chmodSync(path, mode);
    const st = lstatSync(path);
    return { path, dev: st.dev, ino: st.ino };
  } catch (e) {
    // Listening but unusable: stop listening, so that nothing is left behind or kept alive.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new SocketPathError(path, `cannot set the socket file's mode (${errnoCode(e)})`);
  }
}

/** Binds under umask 0177; false (nothing done) where the umask cannot be changed. */
async function bindWithUmask(server: Server, path: string, address: string): Promise<boolean> {
  let previous: number;
  try {
    previous = process.umask(0o177);
  } catch {
    return false; // worker threads may not change the umask
  }
  await listenOn(server, address, (cb) => {
    try {
      server.listen({ path, exclusive: true }, cb);
    } finally {
      process.umask(previous);
    }
  });
  return true;
}

/** Binds in a fresh 0700 directory beside `path`, narrows the mode there, then links into place. */
async function bindInPrivateDir(server: Server, path: string, address: string, dir: string): Promise<void> {
  let privateDir: string;
  try {
    privateDir = mkdtempSync(join(dir, '.nsm-'));
  } catch (e) {
    throw new SocketPathError(path, `cannot create files in ${dir} (${errnoCode(e)})`);
  }
  const bindPath = join(privateDir, 's');
  try {
    if (Buffer.byteLength(bindPath) > SUN_PATH_MAX) {
      throw new SocketPathError(path, `the directory name is too long for a Unix socket (binding needs ${Buffer.byteLength(bindPath)} bytes, Linux allows ${SUN_PATH_MAX})`);
    }
    await listenOn(server, address, (cb) => server.listen({ path: bindPath, exclusive: true }, cb));
    chmodSync(bindPath, 0o600);
    try {
      linkSync(bindPath, path);
    } catch (e) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (errnoCode(e) === 'EEXIST') throw new AddressInUseError(address, 'was created by someone else while starting');
      throw new SocketPathError(path, `cannot create the socket file (${errnoCode(e)})`);
    }
  } finally {
    try {
      unlinkSync(bindPath);
    } catch {
      // never bound
    }
    rmdirSync(privateDir);
  }
}

/** A socket file nobody accepts on is removed; a live one or a non-socket is an error. */
export async function clearStaleSocket(path: string, address: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new AddressInUseError(address, 'exists and is not a socket');
  const live = await new Promise<boolean>((resolve) => {
    const c = process.getBuiltinModule('node:net').connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new AddressInUseError(address, 'a server is already listening there');
  try {
    unlinkSync(path);
  } catch {
    // Gone already: fine.
  }
}

/** Removes a socket file if it is still the one this server created. */
export function removeIfSame(file: SocketFile): void {
  try {
    const st = lstatSync(file.path);
    if (st.dev === file.dev && st.ino === file.ino) unlinkSync(file.path);
  } catch {
    // Already removed.
  }
}

/**
 * Writing files that hold secrets (Node only), as `nsm-emulator ca init` does: the directory is
 * created (or tightened) to 0700 and must not be a symbolic link; no target name may be a
 * symbolic link (a planted `root.key -> ../victim` is refused, never followed); each file is
 * written to a fresh temporary name opened with O_CREAT|O_EXCL|O_NOFOLLOW, given exactly its
 * mode with fchmod (0600 for keys, whatever the umask or a previous file's mode), and renamed
 * over the target, so a reader never sees half a file and no existing inode is ever written to.
 * @module
 */
import { randomBytes } from 'node:crypto';
// node:fs's lazy `promises` (not node:fs/promises): importing this module loads nothing more.
import { constants as fs, promises as fsp } from 'node:fs';
import { join } from 'node:path';


/** A refusal or failure, naming the path at fault. */
export class PrivateFileError extends Error {
  override readonly name = 'PrivateFileError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path}: ${detail}`);
  }
}

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Creates `dir` (and missing parents) or checks the existing one; either way it ends up 0700. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(dir);
  } catch (e) {
    if (code(e) === 'ENOTDIR') throw new PrivateFileError(dir, 'a part of the path is not a directory');
    if (code(e) !== 'ENOENT') throw new PrivateFileError(dir, `cannot be examined (${code(e)})`);
    try {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e2) {
      const c = code(e2);
      throw new PrivateFileError(dir, c === 'ENOTDIR' ? 'a part of the path is not a directory' : c === 'EACCES' ? 'cannot be created (permission denied)' : `cannot be created (${c})`);
    }
    st = await fsp.lstat(dir);
  }
  if (st.isSymbolicLink()) throw new PrivateFileError(dir, 'is a symbolic link; give the directory itself');
  if (!st.isDirectory()) throw new PrivateFileError(dir, 'exists and is not a directory');
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new PrivateFileError(dir, `belongs to another user (uid ${st.uid}); keys are only written to your own directory`);
  }
  await fsp.chmod(dir, 0o700);
}

/**
 * Checks the names about to be written in `dir`: none may be a symbolic link (dangling or not)
 * or anything but a regular file; without `replace`, none may exist at all.
 */
export async function checkTargets(dir: string, names: readonly string[], replace: boolean, existsHint: string): Promise<void> {
  let existing: string | null = null;
  for (const name of names) {
    const path = join(dir, name);
    let st;
    try {
      st = await fsp.lstat(path);
    } catch (e) {
      if (code(e) === 'ENOENT') continue;
      throw new PrivateFileError(path, `cannot be examined (${code(e)})`);
    }
    if (st.isSymbolicLink()) throw new PrivateFileError(path, 'is a symbolic link; refusing to write through it (remove it first)');
    if (!st.isFile()) throw new PrivateFileError(path, 'exists and is not a regular file');
    existing ??= path;
  }
  // Symbolic links anywhere are reported first; then the first existing name, in the order given.
  if (existing !== null && !replace) throw new PrivateFileError(existing, `already exists (${existsHint})`);
}

/** Writes `data` to `path` with exactly `mode`, through a new O_EXCL|O_NOFOLLOW file renamed into place. */
export async function writeFileExclusive(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fh = await fsp.open(tmp, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | fs.O_NOFOLLOW, 0o600).catch((e: unknown) => {
    throw new PrivateFileError(path, `cannot be created (${code(e)})`);
  });
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp.unlink(tmp).catch(() => undefined);
    throw new PrivateFileError(path, `cannot be written (${code(e)})`);
  }
  await fh.close();
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw new PrivateFileError(path, `cannot be put in place (${code(e)})`);
  }
}

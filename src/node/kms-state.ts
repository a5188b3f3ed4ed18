/**
 * Persisting the local KMS's keys and aliases in a directory (Node only): one
 * `kms-state.json`, written 0600 through a fresh temporary file and a rename, never following
 * symbolic links; read with a size bound. The file holds key material in the clear: it is
 * TEST ONLY, like the emulator's CA.
 * @module
 */
import { constants } from 'node:fs';
import { join } from 'node:path';
import type { KmsStateJson } from '../kms/service.js';

/** node:fs/promises, loaded at first use (not when nsm-emulator/node is imported). */
const fsp = () => process.getBuiltinModule('node:fs/promises');

export const KMS_STATE_FILE = 'kms-state.json';
/** Largest state file read (bytes). */
export const KMS_STATE_MAX_BYTES = 64 * 1024 * 1024;

/** A problem with the state directory or file: names the path and what was expected. */
export class KmsStateError extends Error {
  override readonly name = 'KmsStateError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

/** Makes the directory (0700) if missing; refuses a symbolic link or a non-directory. */
export async function prepareKmsStateDir(dir: string): Promise<void> {
  try {
    await fsp().mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new KmsStateError(dir, `cannot be created (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const st = await fsp().lstat(dir);
  if (st.isSymbolicLink()) throw new KmsStateError(dir, 'is a symbolic link; give the real directory');
  if (!st.isDirectory()) throw new KmsStateError(dir, 'is not a directory');
}

/** Reads the saved state, or null when the directory has none yet. */
export async function loadKmsState(dir: string): Promise<KmsStateJson | null> {
  const path = join(dir, KMS_STATE_FILE);
  let fh;
  try {
    fh = await fsp().open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new KmsStateError(path, code === 'ELOOP' ? 'is a symbolic link; refusing to follow it' : `cannot be read (${code ?? String(e)})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KmsStateError(path, 'is not a regular file');
    if (st.size > KMS_STATE_MAX_BYTES) throw new KmsStateError(path, `is ${st.size} bytes; at most ${KMS_STATE_MAX_BYTES} are read`);
    const text = await fh.readFile('utf8');
    try {
      return JSON.parse(text) as KmsStateJson;
    } catch (e) {
      throw new KmsStateError(path, `is not JSON (${(e as Error).message})`);
    }
  } finally {
    await fh.close();
  }
}

/** Writes the state: a new 0600 file beside the old one, then an atomic rename over it. */
export async function saveKmsState(dir: string, state: KmsStateJson): Promise<void> {
  const path = join(dir, KMS_STATE_FILE);
  const tmp = join(dir, `.${KMS_STATE_FILE}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`);
  const fh = await fsp().open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(JSON.stringify(state, null, 1) + '\n');
    await fh.chmod(0o600);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await fsp().unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await fsp().rename(tmp, path);
}

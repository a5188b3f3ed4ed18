/**
 * Booting from an enclave image on disk: turns an EIF path, a parent instance id, a parent
 * role ARN and debug mode into the `boot`, `pcrs` and `instanceId` device options. Failures
 * are {@link EifBootError}s whose message names the input (`--eif FILE: ...`), ready to show a
 * person.
 * @module
 */
import { type EifBootProfile, eifBootProfile } from '../eif/boot-profile.js';
import { EifFormatError, EifSignatureError } from '../eif/errors.js';
import { type MeasureThreadsReport, type ReadProgress, bootProfileFromEifFile } from './eif-file.js';

export interface EifBootRequest {
  /** Path of the EIF to measure (PCR0, 1, 2 and 8). */
  eifPath?: string | undefined;
  /** Parent instance id: PCR4 and the module_id prefix. */
  parentInstanceId?: string | undefined;
  /** Parent IAM role ARN: PCR3. */
  parentRoleArn?: string | undefined;
  /** Debug-mode enclave: PCR0, 1, 2 and 8 read as zero. */
  debug: boolean;
  /** Told the bytes of the EIF read so far in each pass (for a progress display). */
  onProgress?: ReadProgress | undefined;
  /** Told how the EIF's measurement used threads (and why a worker thread failed, when one did). */
  onThreads?: ((report: MeasureThreadsReport) => void) | undefined;
}

/** Why an {@link eifBootOptions} request cannot boot; `input` names the bad option. */
export class EifBootError extends Error {
  override readonly name = 'EifBootError';
  constructor(
    /** The request field at fault, in CLI form: `--eif`, `--parent-id` or `--parent-role`. */
    readonly input: '--eif' | '--parent-id' | '--parent-role',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The boot profile of an enclave started from `req.eifPath` under the given parent, as
 * nitro-cli would start it. Rejects with {@link EifBootError} for an unreadable or malformed
 * image, a refused signature, or an empty id or ARN.
 */
export async function eifBootOptions(req: EifBootRequest): Promise<EifBootProfile> {
  if (req.parentInstanceId === '') throw new EifBootError('--parent-id', "--parent-id '': expected a parent instance id such as i-0123456789abcdef0");
  if (req.parentRoleArn === '') throw new EifBootError('--parent-role', "--parent-role '': expected an IAM role ARN such as arn:aws:iam::123456789012:role/Name");
  const parent = { parentInstanceId: req.parentInstanceId, parentRoleArn: req.parentRoleArn, debug: req.debug };
  if (req.eifPath === undefined) return eifBootProfile(null, parent);
  try {
    return await bootProfileFromEifFile(req.eifPath, parent, new Date(), req.onProgress, req.onThreads);
  } catch (e) {
    if (e instanceof EifFormatError) throw new EifBootError('--eif', `--eif ${req.eifPath}: not a bootable EIF: ${e.message}`);
    if (e instanceof EifSignatureError) throw new EifBootError('--eif', `--eif ${req.eifPath}: signed image refused: ${e.message}`);
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new EifBootError('--eif', `--eif ${req.eifPath}: cannot read the file (${code})`);
    throw e;
  }
}

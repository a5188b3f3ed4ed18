/**
 * The `--eif`, `--parent-id`, `--parent-role` and `--debug` boot flags: turns them into the
 * `boot`, `pcrs` and `instanceId` device options, with errors that name the flag and the file.
 * @module
 */
import { UsageError } from '../cli/io.js';
import { type EifBootProfile, eifBootProfile } from '../eif/boot-profile.js';
import { EifFormatError, EifSignatureError } from '../eif/errors.js';
import { bootProfileFromEifFile } from './eif-file.js';

export interface EifBootRequest {
  eifPath?: string | undefined;
  parentInstanceId?: string | undefined;
  parentRoleArn?: string | undefined;
  debug: boolean;
}

export async function eifBootOptions(req: EifBootRequest): Promise<EifBootProfile> {
  if (req.parentInstanceId === '') throw new UsageError("--parent-id '': expected a parent instance id such as i-0123456789abcdef0");
  if (req.parentRoleArn === '') throw new UsageError("--parent-role '': expected an IAM role ARN such as arn:aws:iam::123456789012:role/Name");
  const parent = { parentInstanceId: req.parentInstanceId, parentRoleArn: req.parentRoleArn, debug: req.debug };
  if (req.eifPath === undefined) return eifBootProfile(null, parent);
  try {
    return await bootProfileFromEifFile(req.eifPath, parent);
  } catch (e) {
    if (e instanceof EifFormatError) throw new UsageError(`--eif ${req.eifPath}: not a bootable EIF: ${e.message}`);
    if (e instanceof EifSignatureError) throw new UsageError(`--eif ${req.eifPath}: signed image refused: ${e.message}`);
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw new UsageError(`--eif ${req.eifPath}: cannot read the file (${code})`);
    throw e;
  }
}

/**
 * Placeholder until the attestation module lands.
 * @module
 */
import type { AttesterFactory } from '../device/attester.js';

export async function attesterFromCaDir(_dir: string): Promise<AttesterFactory> {
  throw new Error('CA directories are not available yet');
}

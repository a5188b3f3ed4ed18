/**
 * Placeholder until the attestation module lands: the device answers InternalError.
 * @module
 */
import type { AttesterFactory } from '../device/attester.js';

export const defaultAttester: AttesterFactory = () => {
  throw new Error('attestation is not available yet');
};

/**
 * The device's SHA-384 through node:crypto (OpenSSL): the same bytes as the default pure-JS one,
 * for the NsmDevice `sha384` option. A device computes a handful of hashes when it starts (the
 * boot measurements), which pure JS pays for with code that has not been optimized yet.
 * @module
 */
import { createHash } from 'node:crypto';
import type { DeviceSha384 } from '../device/sha384.js';

/** {@link DeviceSha384} with node:crypto. */
export const nodeDeviceSha384: DeviceSha384 = (...parts) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

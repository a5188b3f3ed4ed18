/**
 * Kept for src/cli/pcr.ts, which imports `latin1Text` from here: the PEM code itself is
 * src/x509/pem.ts.
 * @module
 */
export { latin1Text } from '../x509/pem.js';

/**
 * The package version, as in package.json (a test keeps the two equal).
 * @module
 */
export const VERSION = '0.1.0';

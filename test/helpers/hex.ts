/** Hex helpers for tests (independent of the library's own helpers). */
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
/** Hex of an ASCII string, for assembling expected CBOR by hand. */
export const ascii = (s: string): string => Buffer.from(s, 'ascii').toString('hex');

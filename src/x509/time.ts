/**
 * Certificate validity times: UTCTime and GeneralizedTime in the whole-second `...Z` form that
 * RFC 5280 (4.1.2.5) requires (UTCTime through 2049, GeneralizedTime from 2050), read to
 * milliseconds since the epoch.
 * @module
 */
import { DerError, type DerNode, TAG } from './der.js';

/** Milliseconds since the epoch of a UTCTime or GeneralizedTime in the `...Z` form RFC 5280 requires. */
export function timeValue(node: DerNode, what: string): number {
  if (node.value.length > 15) throw new DerError(`${what}: ${node.value.length}-octet time`);
  const s = new TextDecoder().decode(node.value);
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    year = Number(m[1]);
    if (year < 2050) throw new DerError(`${what}: GeneralizedTime for ${year} (RFC 5280 4.1.2.5: UTCTime through 2049)`);
  } else {
    throw new DerError(`${what}: '${s}' is not a UTCTime or GeneralizedTime of the form RFC 5280 requires`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw new DerError(`${what}: '${s}' is not a real date`);
  }
  return ms;
}

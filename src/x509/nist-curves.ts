/**
 * ECDSA on the NIST curves (P-256, P-384, P-521) from @noble/curves, loaded on first use.
 *
 * Loading @noble/curves costs more than everything else a cold start does, and most paths never
 * need it: documents are signed with WebCrypto or node:crypto unless a seeded (reproducible)
 * signer is asked for. So the async entry points that may need pure-JS ECDSA (the noble signer,
 * EIF measuring of a signed image, EIF signing) await {@link loadNistCurves} first, and the
 * synchronous code they reach takes the loaded module from {@link nistCurves}.
 * @module
 */
import type * as Nist from '@noble/curves/nist.js';

export type NistCurves = typeof Nist;

let curves: NistCurves | null = null;
let loading: Promise<NistCurves> | null = null;

/** Loads @noble/curves' NIST curves once; later calls return the same module. */
export function loadNistCurves(): Promise<NistCurves> {
  loading ??= import('@noble/curves/nist.js').then((m) => (curves = m));
  return loading;
}

/** Thrown by {@link nistCurves} when called before {@link loadNistCurves} has completed. */
export class NistCurvesNotLoadedError extends Error {
  override readonly name = 'NistCurvesNotLoadedError';
  constructor() {
    super('pure-JS ECDSA (@noble/curves) is not loaded yet: await loadNistCurves() before this call');
  }
}

/** The loaded curves; throws {@link NistCurvesNotLoadedError} before {@link loadNistCurves} resolved. */
export function nistCurves(): NistCurves {
  if (curves === null) throw new NistCurvesNotLoadedError();
  return curves;
}

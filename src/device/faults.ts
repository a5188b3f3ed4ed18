/**
 * Fault injection, for testing how an application copes with an NSM that fails: chosen
 * requests answered with a chosen error code, answers delayed, or the device disappearing.
 *
 * A fault never changes what the wire can carry: an injected error is the device's own
 * `{"Error": code}` answer, with a code the real device produces, and the request it answers is
 * not executed (no state changes). A delay holds the request (and every request after it, as
 * the driver's lock would) before it executes. A disappearance fails the request and every
 * later one with {@link NsmDeviceGoneError}; servers then close the connection, which a
 * `/dev/nsm` client sees as EIO.
 * @module
 */
import { type ErrorCode, NsmError } from './error-code.js';
import { type RandomSource, SeededRandom, systemRandom } from './random.js';
import type { NsmRequestType } from '../wire/messages.js';

/** Request names a fault can target (`*`: every well-formed request). */
export const FAULT_REQUESTS = ['DescribePCR', 'ExtendPCR', 'LockPCR', 'LockPCRs', 'DescribeNSM', 'GetRandom', 'Attestation', '*'] as const;

/**
 * Error codes a fault may answer: those the real device sends. `Success`, `InvalidArgument`,
 * `InvalidResponse` and `BufferTooSmall` are client-library codes, never on the wire.
 */
export const FAULT_ERROR_CODES = ['InvalidIndex', 'ReadOnlyIndex', 'InvalidOperation', 'InputTooLarge', 'InternalError'] as const;

/** A device error code that can be injected. */
export type FaultErrorCode = (typeof FAULT_ERROR_CODES)[number];

/** What a fault does to a request it hits. */
export type FaultEffect =
  /** Answer `{"Error": code}` without executing the request. */
  | { readonly error: FaultErrorCode }
  /** Execute the request `delayMs` milliseconds late. */
  | { readonly delayMs: number }
  /** The device disappears: this request and every later one fail with NsmDeviceGoneError. */
  | { readonly disappear: true };

/** One fault rule. */
export interface NsmFault {
  /** Which request it targets, by name (`Attestation`), or `*` for every well-formed request. */
  readonly request: NsmRequestType | '*';
  /** What happens to a request it hits. */
  readonly effect: FaultEffect;
  /**
   * When it hits (default 1): a count N hits the next N targeted requests, then the rule is
   * spent; `'always'` hits every one; `{ probability: p }` hits each with probability p (drawn
   * from the device seed when there is one, so a seeded run repeats exactly).
   */
  readonly when?: number | 'always' | { readonly probability: number };
  /** Targeted requests let through untouched before the rule can hit (default 0). */
  readonly skip?: number;
}

/** Reported to `onFault` each time a fault hits a request. */
export interface FaultEvent {
  /** The request hit. */
  readonly request: NsmRequestType;
  /** The rule that hit it (as given, with its position in the list). */
  readonly fault: NsmFault;
  readonly index: number;
  /** A one-line description for people, e.g. `Attestation answered InternalError (fault 1, 1 of 1)`. */
  readonly message: string;
}

/** What the device does for one request, decided by {@link FaultPlan.decide}. */
export interface FaultDecision {
  /** Milliseconds to wait before the request executes (sum of the delays that hit). */
  readonly delayMs: number;
  /** Answer this code instead of executing. */
  readonly error: FaultErrorCode | null;
  /** The device disappears with this request. */
  readonly disappear: boolean;
}

/** Thrown by every request on a device that has disappeared (an injected fault). */
export class NsmDeviceGoneError extends NsmError {
  override readonly name: string = 'NsmDeviceGoneError';
  constructor() {
    // An nsm-api client maps the EIO of a vanished device to InternalError; so does this error.
    super('InternalError');
    this.message = 'the NSM device has disappeared (injected fault): every request fails from now on';
  }
}

/** Longest delay a fault may add: the Linux driver gives up on the device after 2 minutes. */
export const FAULT_DELAY_MAX_MS = 120_000;

function describeEffect(e: FaultEffect): string {
  if ('error' in e) return `answered ${e.error}`;
  if ('delayMs' in e) return `delayed ${e.delayMs} ms`;
  return 'made the device disappear';
}

/** Checks one rule; a TypeError/RangeError names the field at fault. */
function checkFault(f: NsmFault, i: number): void {
  const where = `faults[${i}]`;
  if (f === null || typeof f !== 'object') throw new TypeError(`${where} must be an object`);
  if (!(FAULT_REQUESTS as readonly string[]).includes(f.request)) throw new TypeError(`${where}.request must be one of ${FAULT_REQUESTS.join(', ')}`);
  const e = f.effect as Record<string, unknown> | null;
  if (e === null || typeof e !== 'object') throw new TypeError(`${where}.effect must be { error }, { delayMs } or { disappear: true }`);
  if ('error' in e) {
    if (!(FAULT_ERROR_CODES as readonly unknown[]).includes(e['error'])) {
      throw new TypeError(`${where}.effect.error must be a code the device sends: ${FAULT_ERROR_CODES.join(', ')}`);
    }
  } else if ('delayMs' in e) {
    const d = e['delayMs'];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > FAULT_DELAY_MAX_MS) throw new RangeError(`${where}.effect.delayMs must be an integer in 0..${FAULT_DELAY_MAX_MS}`);
  } else if (e['disappear'] !== true) {
    throw new TypeError(`${where}.effect must be { error }, { delayMs } or { disappear: true }`);
  }
  if (f.skip !== undefined && !(Number.isInteger(f.skip) && f.skip >= 0)) throw new RangeError(`${where}.skip must be a count of at least 0`);
  const w = f.when;
  if (w === undefined || w === 'always') return;
  if (typeof w === 'number') {
    if (!Number.isInteger(w) || w < 1) throw new RangeError(`${where}.when must be a count of at least 1, 'always' or { probability }`);
    return;
  }
  const p = (w as { probability?: unknown }).probability;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${where}.when.probability must be a number in [0, 1]`);
}

/** The fault rules of one device and how many hits each has left. */
export class FaultPlan {
  private readonly rules: readonly NsmFault[];
  private remaining: number[];
  private seen: number[];
  private readonly random: RandomSource;
  private readonly randomStart: number;

  /**
   * @param seed the device seed: probabilities then draw from a stream of their own, so faults
   * never shift what GetRandom or the keys see.
   * @throws TypeError or RangeError naming the first malformed rule.
   */
  constructor(
    rules: readonly NsmFault[],
    seed: Uint8Array | null,
    private readonly onFault?: (event: FaultEvent) => void,
  ) {
    if (!Array.isArray(rules)) throw new TypeError('faults must be an array');
    rules.forEach(checkFault);
    this.rules = rules.map((r) => ({ ...r }));
    this.remaining = this.initialCounts();
    this.seen = this.rules.map(() => 0);
    this.random = seed === null ? systemRandom : new SeededRandom(seed, 'faults');
    this.randomStart = 0;
  }

  private initialCounts(): number[] {
    return this.rules.map((r) => (typeof r.when === 'number' ? r.when : r.when === undefined ? 1 : Infinity));
  }

  /** Back to the boot state: counts refilled, the seeded draw rewound. */
  reset(): void {
    this.remaining = this.initialCounts();
    this.seen = this.rules.map(() => 0);
    if (this.random instanceof SeededRandom) this.random.position = this.randomStart;
  }

  /** A uniform draw in [0, 1) with 53 bits. */
  private draw(): number {
    const b = this.random.bytes(7);
    let x = 0;
    for (let i = 0; i < 7; i++) x = x * 256 + b[i]!;
    return Math.floor(x / 8) / 2 ** 53;
  }

  /** Which rules hit this request, in order; the first error or disappearance ends the list. */
  decide(request: NsmRequestType): FaultDecision | null {
    let delayMs = 0;
    let hit = false;
    for (let i = 0; i < this.rules.length; i++) {
      const rule = this.rules[i]!;
      if (rule.request !== '*' && rule.request !== request) continue;
      if (this.remaining[i]! <= 0) continue;
      if (this.seen[i]!++ < (rule.skip ?? 0)) continue;
      const w = rule.when;
      if (typeof w === 'object' && this.draw() >= w.probability) continue;
      this.remaining[i]!--;
      hit = true;
      const count = typeof w === 'number' || w === undefined ? ` ${(w ?? 1) - this.remaining[i]!} of ${w ?? 1}` : '';
      this.onFault?.({ request, fault: rule, index: i, message: `${request} ${describeEffect(rule.effect)} (fault ${i + 1}${count ? ',' + count : ''})` });
      const e = rule.effect;
      if ('delayMs' in e) {
        delayMs += e.delayMs;
        continue;
      }
      if ('error' in e) return { delayMs, error: e.error, disappear: false };
      return { delayMs, error: null, disappear: true };
    }
    return hit ? { delayMs, error: null, disappear: false } : null;
  }
}

/** Why a `--fault` text cannot be read; the message names the text and what was expected. */
export class FaultSyntaxError extends Error {
  override readonly name = 'FaultSyntaxError';
}

/**
 * Reads the text form `REQUEST=EFFECT[:WHEN][@K]` used by the CLI's `--fault`:
 * REQUEST is a request name or `*`; EFFECT is an error code (`InternalError`), `delay-MS`
 * (`delay-250`) or `disappear`; WHEN is a count (default 1), `always`, or a probability as
 * `P%` (`25%`) or a fraction (`0.25`); `@K` starts at the K-th such request (default 1).
 * @throws FaultSyntaxError naming the part that is wrong.
 */
export function parseFault(text: string): NsmFault {
  const m = /^([^=]+)=([^:@]+)(?::([^@]+))?(?:@(.*))?$/.exec(text);
  const fail = (why: string): never => {
    throw new FaultSyntaxError(`'${text}': ${why}`);
  };
  if (!m) return fail('expected REQUEST=EFFECT[:WHEN][@K], e.g. Attestation=InternalError:1');
  const [, request, effectText, whenText, atText] = m as unknown as [string, string, string, string | undefined, string | undefined];
  if (!(FAULT_REQUESTS as readonly string[]).includes(request)) fail(`unknown request '${request}'; expected one of ${FAULT_REQUESTS.join(', ')}`);
  let effect: FaultEffect;
  const delay = /^delay-(\d+)$/.exec(effectText);
  if (effectText === 'disappear') effect = { disappear: true };
  else if (delay) {
    const ms = Number(delay[1]);
    if (ms > FAULT_DELAY_MAX_MS) fail(`delay ${ms} ms is over ${FAULT_DELAY_MAX_MS} (the driver's own timeout)`);
    effect = { delayMs: ms };
  } else if ((FAULT_ERROR_CODES as readonly string[]).includes(effectText)) effect = { error: effectText as FaultErrorCode };
  else {
    return fail(`unknown effect '${effectText}'; expected an error code the device sends (${FAULT_ERROR_CODES.join(', ')}), delay-MS or disappear`);
  }
  let when: NsmFault['when'];
  if (whenText === undefined) when = 1;
  else if (whenText === 'always') when = 'always';
  else if (/^\d+$/.test(whenText) && Number(whenText) >= 1) when = Number(whenText);
  else if (/^\d+(\.\d+)?%$/.test(whenText) && Number(whenText.slice(0, -1)) <= 100) when = { probability: Number(whenText.slice(0, -1)) / 100 };
  else if (/^0?\.\d+$|^[01]$/.test(whenText)) when = { probability: Number(whenText) };
  else return fail(`unknown WHEN '${whenText}'; expected a count (1, 3), always, or a probability (25% or 0.25)`);
  let skip = 0;
  if (atText !== undefined) {
    if (!/^\d+$/.test(atText) || Number(atText) < 1) fail(`'@${atText}': expected @K with K >= 1, the first request the fault may hit (@3: the third)`);
    skip = Number(atText) - 1;
  }
  return skip === 0 ? { request: request as NsmFault['request'], effect, when } : { request: request as NsmFault['request'], effect, when, skip };
}

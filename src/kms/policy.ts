/**
 * Key policies: the IAM policy language as KMS applies it to a request, with an explanation of
 * every decision (which statement decided, and which condition).
 *
 * Supported: Version, Statement (object or list), Sid, Effect, Principal / NotPrincipal (`*`,
 * `{"AWS": ...}` with `*`, account ids, `arn:aws:iam::ACCOUNT:root` and exact ARNs), Action /
 * NotAction and Resource / NotResource with `*` and `?` wildcards, and Condition with the
 * String*, Arn*, Null and Bool operators, their Not forms, the IfExists suffix and the
 * ForAnyValue: / ForAllValues: set prefixes. An explicit Deny wins; without an Allow the
 * request is denied.
 * @module
 */

/** A policy that is not valid JSON or not the IAM grammar; the message names the statement and field. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
}

/** Largest key policy KMS accepts (characters). */
export const MAX_POLICY_LENGTH = 32768;

type Values = readonly string[];

interface ConditionClause {
  /** The operator as written, e.g. `ForAnyValue:StringEqualsIgnoreCase`. */
  readonly operator: string;
  readonly set: 'any' | 'all' | null;
  readonly base: string;
  readonly negated: boolean;
  readonly ifExists: boolean;
  /** The condition key as written, and lower-cased for lookup (condition keys are case-insensitive). */
  readonly key: string;
  readonly lookup: string;
  readonly values: Values;
}

interface PrincipalSpec {
  readonly any: boolean;
  readonly aws: Values;
  /** Service, Federated or CanonicalUser principals: they never match a caller of this endpoint. */
  readonly other: Values;
}

export interface PolicyStatement {
  /** `Sid 'X'` or `statement #N` (1-based), for messages. */
  readonly label: string;
  readonly effect: 'Allow' | 'Deny';
  readonly principal: PrincipalSpec | null;
  readonly notPrincipal: PrincipalSpec | null;
  readonly action: Values | null;
  readonly notAction: Values | null;
  readonly resource: Values | null;
  readonly notResource: Values | null;
  readonly conditions: readonly ConditionClause[];
}

export interface KeyPolicy {
  readonly statements: readonly PolicyStatement[];
}

/** Who is calling and what they ask for. */
export interface PolicyRequest {
  /** e.g. `kms:Decrypt`. */
  readonly action: string;
  /** The caller's ARN, e.g. `arn:aws:iam::111122223333:root` or `...:role/App`. */
  readonly principalArn: string;
  readonly principalAccount: string;
  /** The key's ARN. */
  readonly resource: string;
  /** Condition keys (any case) and their values; an absent key is not in the request. */
  readonly context: ReadonlyMap<string, Values>;
}

export interface PolicyDecision {
  readonly allowed: boolean;
  /** `explicit-deny`, `allow`, or `implicit-deny` (no statement allowed). */
  readonly outcome: 'explicit-deny' | 'allow' | 'implicit-deny';
  /** The statement that decided (for implicit-deny: the closest Allow, if any got as far as its conditions). */
  readonly statement: string | null;
  /** The condition that decided, as text (`StringEquals kms:... = [...]; request has ...`), if one did. */
  readonly condition: string | null;
  /** One line for a person. */
  readonly reason: string;
  /** Why each statement did or did not apply, in order. */
  readonly trace: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Parsing

const STRING_OPS = ['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike'];
const ARN_OPS = ['ArnEquals', 'ArnNotEquals', 'ArnLike', 'ArnNotLike'];
const OTHER_OPS = ['Null', 'Bool'];
const KNOWN_OPS = new Map([...STRING_OPS, ...ARN_OPS, ...OTHER_OPS].map((o) => [o.toLowerCase(), o]));

function valueList(where: string, v: unknown, allowBool = false): Values {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new PolicyError(`${where}: expected a string or a non-empty list of strings`);
  return list.map((x) => {
    if (typeof x === 'string') return x;
    if (allowBool && (typeof x === 'boolean' || typeof x === 'number')) return String(x);
    throw new PolicyError(`${where}: expected strings, found ${JSON.stringify(x)}`);
  });
}

function parsePrincipal(where: string, v: unknown): PrincipalSpec {
  if (v === '*') return { any: true, aws: [], other: [] };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PolicyError(`${where}: expected "*" or an object such as {"AWS": "arn:aws:iam::111122223333:root"}`);
  const aws: string[] = [];
  const other: string[] = [];
  for (const [type, list] of Object.entries(v)) {
    const values = valueList(`${where}.${type}`, list);
    if (type === 'AWS') aws.push(...values);
    else if (type === 'Service' || type === 'Federated' || type === 'CanonicalUser') other.push(...values.map((x) => `${type}:${x}`));
    else throw new PolicyError(`${where}: unknown principal type '${type}' (expected AWS, Service, Federated or CanonicalUser)`);
  }
  return { any: false, aws, other };
}

function parseOperator(where: string, op: string): Pick<ConditionClause, 'set' | 'base' | 'negated' | 'ifExists'> {
  let rest = op;
  let set: ConditionClause['set'] = null;
  const lower = rest.toLowerCase();
  if (lower.startsWith('foranyvalue:')) (set = 'any'), (rest = rest.slice(12));
  else if (lower.startsWith('forallvalues:')) (set = 'all'), (rest = rest.slice(13));
  let ifExists = false;
  if (rest.toLowerCase().endsWith('ifexists') && rest.toLowerCase() !== 'null') (ifExists = true), (rest = rest.slice(0, -8));
  const base = KNOWN_OPS.get(rest.toLowerCase());
  if (!base) throw new PolicyError(`${where}: unsupported condition operator '${op}' (supported: ${[...KNOWN_OPS.values()].join(', ')}, with ForAnyValue:/ForAllValues: and IfExists)`);
  if (base === 'Null' && (set || ifExists)) throw new PolicyError(`${where}: '${op}': Null takes no set prefix or IfExists`);
  return { set, base, negated: /Not/.test(base), ifExists };
}

function parseStatement(s: unknown, index: number): PolicyStatement {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new PolicyError(`Statement[${index}]: expected an object`);
  const st = s as Record<string, unknown>;
  const sid = st.Sid;
  if (sid !== undefined && typeof sid !== 'string') throw new PolicyError(`Statement[${index}].Sid: expected a string`);
  const label = sid ? `Sid '${sid}'` : `statement #${index + 1}`;
  const where = `Statement[${index}] (${label})`;
  const known = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
  for (const k of Object.keys(st)) if (!known.has(k)) throw new PolicyError(`${where}: unknown field '${k}'`);
  if (st.Effect !== 'Allow' && st.Effect !== 'Deny') throw new PolicyError(`${where}.Effect: expected "Allow" or "Deny", found ${JSON.stringify(st.Effect)}`);
  const one = (a: string, b: string) => {
    if ((st[a] === undefined) === (st[b] === undefined)) throw new PolicyError(`${where}: exactly one of ${a} and ${b} is required`);
  };
  one('Principal', 'NotPrincipal');
  one('Action', 'NotAction');
  one('Resource', 'NotResource');
  const conditions: ConditionClause[] = [];
  if (st.Condition !== undefined) {
    if (typeof st.Condition !== 'object' || st.Condition === null || Array.isArray(st.Condition)) throw new PolicyError(`${where}.Condition: expected an object`);
    for (const [operator, block] of Object.entries(st.Condition)) {
      const w = `${where}.Condition.${operator}`;
      const op = parseOperator(w, operator);
      if (typeof block !== 'object' || block === null || Array.isArray(block)) throw new PolicyError(`${w}: expected an object of condition keys`);
      for (const [key, v] of Object.entries(block)) {
        const values = valueList(`${w}.${key}`, v, true);
        if (op.base === 'Null' || op.base === 'Bool') {
          for (const x of values) if (!/^(true|false)$/i.test(x)) throw new PolicyError(`${w}.${key}: ${op.base} takes "true" or "false", found ${JSON.stringify(x)}`);
        }
        conditions.push({ operator, ...op, key, lookup: key.toLowerCase(), values });
      }
    }
  }
  const opt = (k: string) => (st[k] === undefined ? null : valueList(`${where}.${k}`, st[k]));
  return {
    label,
    effect: st.Effect,
    principal: st.Principal === undefined ? null : parsePrincipal(`${where}.Principal`, st.Principal),
    notPrincipal: st.NotPrincipal === undefined ? null : parsePrincipal(`${where}.NotPrincipal`, st.NotPrincipal),
    action: opt('Action'),
    notAction: opt('NotAction'),
    resource: opt('Resource'),
    notResource: opt('NotResource'),
    conditions,
  };
}

/** Parses and checks a key policy (JSON text or an already parsed object). Throws {@link PolicyError}. */
export function parsePolicy(policy: string | unknown): KeyPolicy {
  let doc: unknown = policy;
  if (typeof policy === 'string') {
    if (policy.length > MAX_POLICY_LENGTH) throw new PolicyError(`the policy is ${policy.length} characters; KMS accepts at most ${MAX_POLICY_LENGTH}`);
    try {
      doc = JSON.parse(policy);
    } catch (e) {
      throw new PolicyError(`the policy is not JSON (${(e as Error).message})`);
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PolicyError('the policy must be a JSON object with a Statement');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!['Version', 'Id', 'Statement'].includes(k)) throw new PolicyError(`unknown top-level field '${k}'`);
  if (d.Version !== undefined && d.Version !== '2012-10-17' && d.Version !== '2008-10-17') {
    throw new PolicyError(`Version: expected "2012-10-17" or "2008-10-17", found ${JSON.stringify(d.Version)}`);
  }
  if (d.Statement === undefined) throw new PolicyError('Statement is required');
  const list = Array.isArray(d.Statement) ? d.Statement : [d.Statement];
  if (list.length === 0) throw new PolicyError('Statement is empty');
  return { statements: list.map(parseStatement) };
}

// ---------------------------------------------------------------------------------------------
// Matching

const wildcardCache = new Map<string, RegExp>();

/** IAM wildcard match: `*` any run, `?` one character. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return ignoreCase ? pattern.toLowerCase() === value.toLowerCase() : pattern === value;
  const cacheKey = (ignoreCase ? 'i' : 's') + pattern;
  let re = wildcardCache.get(cacheKey);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, ignoreCase ? 'si' : 's');
    if (wildcardCache.size > 1024) wildcardCache.clear();
    wildcardCache.set(cacheKey, re);
  }
  return re.test(value);
}

function principalMatches(spec: PrincipalSpec, req: PolicyRequest): boolean {
  if (spec.any) return true;
  return spec.aws.some(
    (p) => p === '*' || p === req.principalArn || p === req.principalAccount || p === `arn:aws:iam::${req.principalAccount}:root`,
  );
}

function matchOne(base: string, requestValue: string, policyValue: string): boolean {
  switch (base) {
    case 'StringEquals':
    case 'StringNotEquals':
    case 'ArnEquals':
    case 'ArnNotEquals':
      return requestValue === policyValue;
    case 'StringEqualsIgnoreCase':
    case 'StringNotEqualsIgnoreCase':
      return requestValue.toLowerCase() === policyValue.toLowerCase();
    case 'StringLike':
    case 'StringNotLike':
    case 'ArnLike':
    case 'ArnNotLike':
      return wildcardMatch(policyValue, requestValue);
    case 'Bool':
      return requestValue.toLowerCase() === policyValue.toLowerCase();
    default:
      return false;
  }
}

/** Whether one condition holds for the request, by IAM's rules for absent keys and sets. */
export function conditionHolds(c: Pick<ConditionClause, 'base' | 'set' | 'negated' | 'ifExists' | 'values'>, got: Values | undefined): boolean {
  const present = got !== undefined && got.length > 0;
  if (c.base === 'Null') return c.values.some((v) => (v.toLowerCase() === 'true') === !present);
  // One request value against the policy's list: positive operators need some value to match,
  // negated ones need none to match.
  const one = (v: string) => (c.negated ? c.values.every((p) => !matchOne(c.base, v, p)) : c.values.some((p) => matchOne(c.base, v, p)));
  if (c.set === 'any') return present ? got.some(one) : c.ifExists;
  if (c.set === 'all') return present ? got.every(one) : true;
  if (!present) return c.ifExists || c.negated;
  return c.negated ? got.every(one) : got.some(one);
}

function describeCondition(c: ConditionClause, got: Values | undefined): string {
  const want = c.values.length === 1 ? JSON.stringify(c.values[0]) : JSON.stringify(c.values);
  const has = got === undefined || got.length === 0 ? 'the request has no such key' : `the request has ${got.length === 1 ? JSON.stringify(got[0]) : JSON.stringify(got)}`;
  return `${c.operator} ${c.key} ${want} (${has})`;
}

function lookupContext(context: ReadonlyMap<string, Values>): (key: string) => Values | undefined {
  const lower = new Map<string, Values>();
  for (const [k, v] of context) lower.set(k.toLowerCase(), v);
  return (key) => lower.get(key);
}

interface StatementResult {
  readonly applies: boolean;
  /** Why not (the first element that did not match), or which conditions held. */
  readonly why: string;
  /** The condition that failed (or, when it applies, the conditions that held). */
  readonly condition: string | null;
  /** True when principal, action and resource matched (so only a condition stopped it). */
  readonly reachedConditions: boolean;
}

function evaluateStatement(st: PolicyStatement, req: PolicyRequest, get: (k: string) => Values | undefined): StatementResult {
  const no = (why: string): StatementResult => ({ applies: false, why, condition: null, reachedConditions: false });
  if (st.principal && !principalMatches(st.principal, req)) return no(`Principal does not include ${req.principalArn}`);
  if (st.notPrincipal && principalMatches(st.notPrincipal, req)) return no(`NotPrincipal excludes ${req.principalArn}`);
  if (st.action && !st.action.some((a) => wildcardMatch(a, req.action, true))) return no(`Action does not include ${req.action}`);
  if (st.notAction && st.notAction.some((a) => wildcardMatch(a, req.action, true))) return no(`NotAction excludes ${req.action}`);
  if (st.resource && !st.resource.some((r) => wildcardMatch(r, req.resource))) return no(`Resource does not include ${req.resource}`);
  if (st.notResource && st.notResource.some((r) => wildcardMatch(r, req.resource))) return no(`NotResource excludes ${req.resource}`);
  const held: string[] = [];
  for (const c of st.conditions) {
    const got = get(c.lookup);
    const text = describeCondition(c, got);
    if (!conditionHolds(c, got)) return { applies: false, why: `condition not met: ${text}`, condition: text, reachedConditions: true };
    held.push(text);
  }
  return {
    applies: true,
    why: held.length ? `applies; conditions met: ${held.join('; ')}` : 'applies (no conditions)',
    condition: held.length ? held.join('; ') : null,
    reachedConditions: true,
  };
}

/** Evaluates a key policy for one request: explicit deny wins, then any allow, else deny. */
export function evaluatePolicy(policy: KeyPolicy, req: PolicyRequest): PolicyDecision {
  const get = lookupContext(req.context);
  const results = policy.statements.map((st) => ({ st, r: evaluateStatement(st, req, get) }));
  const trace = results.map(({ st, r }) => `${st.effect} ${st.label}: ${r.why}`);
  const deny = results.find(({ st, r }) => st.effect === 'Deny' && r.applies);
  if (deny) {
    return {
      allowed: false,
      outcome: 'explicit-deny',
      statement: deny.st.label,
      condition: deny.r.condition,
      reason: `explicitly denied by Deny ${deny.st.label}${deny.r.condition ? ` because ${deny.r.condition}` : ' (no conditions)'}`,
      trace,
    };
  }
  const allow = results.find(({ st, r }) => st.effect === 'Allow' && r.applies);
  if (allow) {
    return {
      allowed: true,
      outcome: 'allow',
      statement: allow.st.label,
      condition: allow.r.condition,
      reason: `allowed by Allow ${allow.st.label}${allow.r.condition ? ` because ${allow.r.condition}` : ' (no conditions)'}`,
      trace,
    };
  }
  const closest = results.find(({ st, r }) => st.effect === 'Allow' && r.reachedConditions);
  if (closest) {
    return {
      allowed: false,
      outcome: 'implicit-deny',
      statement: closest.st.label,
      condition: closest.r.condition,
      reason: `denied: no statement allows ${req.action}; Allow ${closest.st.label} matched the caller, action and key but its ${closest.r.why}`,
      trace,
    };
  }
  return {
    allowed: false,
    outcome: 'implicit-deny',
    statement: null,
    condition: null,
    reason: `denied: no Allow statement covers ${req.principalArn} doing ${req.action} on ${req.resource}`,
    trace,
  };
}

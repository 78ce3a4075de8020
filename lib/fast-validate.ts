/**
 * A fast yes for valid payloads. class-validator's validateSync looks its metadata up again and
 * builds error objects on every call: on a 200-byte payload it was a third of the CPU a message
 * costs. This reads the same metadata once per class into a plan and runs the same constraint
 * functions; it answers only "valid" (the common case) or "don't know". Anything else goes
 * through validateSync, which stays the authority and the source of every error message.
 *
 * Covered: custom (built-in) constraints without `each`, @IsDefined, conditions (@IsOptional,
 * @ValidateIf), whitelisting with forbidNonWhitelisted. Not covered (plan = null, validateSync
 * runs): nested and promise validation, `each`, async constraints, classes without metadata.
 *
 * Each class's plan becomes one function (`compile`) that reads the properties by name and calls
 * each check from a call site of its own, so V8 inlines them: a loop over the plan read every
 * property by a computed name and called every check from one site (862 against 347 ns on the
 * bench's payload with the fast yeses below, docs/benchmarks.md). Where code cannot be generated (node
 * --disallow-code-generation-from-strings), the same plan runs as a loop (`interpret`).
 */
import * as classValidator from 'class-validator';
import { getMetadataStorage, ValidationArguments, ValidationTypes } from 'class-validator';

/** A constraint as class-validator runs it: true when valid. */
type Check = (object: object, value: unknown) => unknown;
/** A fast yes: true only where the constraint would say valid; false means "ask the constraint". */
type Yes = (value: unknown) => boolean;
interface CheckPlan {
  readonly yes?: Yes;
  readonly check: Check;
}
interface PropertyPlan {
  readonly name: string;
  readonly conditions: Array<(object: object, value: unknown) => boolean>;
  readonly checks: CheckPlan[];
}
type Validator = (instance: object) => true | undefined;

const validators = new WeakMap<Function, Validator | null>();

/**
 * The names of class-validator's own decorators (IS_STRING = 'isString', MATCHES, MIN, ...): their
 * validate functions read the arguments during the call and keep nothing of them.
 */
const BUILT_IN: ReadonlySet<string | undefined> = new Set(
  Object.entries(classValidator)
    .filter(([k, v]) => typeof v === 'string' && /^[A-Z][A-Z0-9_]*$/.test(k))
    .map(([, v]) => v as string),
);

/**
 * @Length(min, max) without its cost for the common string: validator's isLength runs two global
 * regular expressions (new RegExp objects and arrays per call) to discount surrogate pairs and
 * variation selectors. A string with no high surrogate (U+D800-DBFF) and no variation selector
 * (U+FE0E, U+FE0F) has neither, so its length is `length`: in range, it is certainly valid.
 */
function plainLength([min, max]: unknown[]): Yes {
  const lo = (min as number) || 0;
  const hi = max as number | undefined;
  return (value) => {
    if (typeof value !== 'string' || value.length < lo || (hi !== undefined && value.length > hi)) return false;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if ((c >= 0xd800 && c <= 0xdbff) || c === 0xfe0e || c === 0xfe0f) return false;
    }
    return true;
  };
}

/**
 * `matches` of validator.js is `!!str.match(pattern)` after compiling a string pattern anew on
 * every call. For a plain RegExp (or a string pattern, compiled here once) without the `g` or
 * `y` flag, `test` gives the same answer without the call chain or a match array; a global or
 * sticky one, a RegExp subclass or a pattern that does not compile is left to the constraint.
 */
function plainMatch([pattern, modifiers]: unknown[]): Yes | undefined {
  let re: RegExp;
  if (pattern instanceof RegExp) {
    if (Object.getPrototypeOf(pattern) !== RegExp.prototype) return undefined;
    re = pattern;
  } else if (typeof pattern === 'string') {
    try {
      re = new RegExp(pattern, modifiers as string | undefined);
    } catch {
      return undefined;
    }
  } else return undefined;
  if (re.global || re.sticky) return undefined;
  return (value) => typeof value === 'string' && re.test(value);
}

/**
 * Fast yeses for class-validator's common built-ins (0.14), by decorator name, from the
 * decorator's constraints: each is true only where the constraint's own function
 * (decorator/<group>/<Name>.js, quoted) returns true; every other value goes to the constraint.
 */
const FAST: Readonly<Record<string, (constraints: unknown[]) => Yes | undefined>> = {
  [classValidator.IS_LENGTH]: plainLength,
  [classValidator.MATCHES]: plainMatch,
  // `value instanceof String || typeof value === 'string'`
  [classValidator.IS_STRING]: () => (v) => typeof v === 'string',
  // `value instanceof Boolean || typeof value === 'boolean'`
  [classValidator.IS_BOOLEAN]: () => (v) => typeof v === 'boolean',
  // `typeof val === 'number' && Number.isInteger(val)`
  [classValidator.IS_INT]: () => (v) => Number.isInteger(v),
  // A finite number passes unless maxDecimalPlaces is set (NaN and Infinity depend on the options).
  [classValidator.IS_NUMBER]: ([options]) =>
    options === undefined || (typeof options === 'object' && options !== null && (options as { maxDecimalPlaces?: unknown }).maxDecimalPlaces === undefined)
      ? (v) => Number.isFinite(v)
      : undefined,
  // `typeof num === 'number' && typeof min === 'number' && num >= min` (<= for max)
  [classValidator.MIN]: ([bound]) => (typeof bound === 'number' ? (v) => typeof v === 'number' && v >= bound : undefined),
  [classValidator.MAX]: ([bound]) => (typeof bound === 'number' ? (v) => typeof v === 'number' && v <= bound : undefined),
  // `possibleValues.some((p) => p === value)`: `some` skips holes, so undefined is left to it.
  [classValidator.IS_IN]: ([possible]) =>
    Array.isArray(possible)
      ? (v) => {
          if (v === undefined) return false;
          for (let i = 0; i < possible.length; i++) if (possible[i] === v) return true;
          return false;
        }
      : undefined,
  // `value !== undefined && value !== null`
  [classValidator.IS_DEFINED]: () => (v) => v !== undefined && v !== null,
};

/**
 * A check of a built-in constraint that passes one ValidationArguments object, filled for the
 * call and emptied after it, instead of a new one per value (a thousand bytes per message over
 * a payload's nine properties). A nested use during the call gets an object of its own.
 */
function reusingArguments(
  constraint: { validate(value: unknown, args: ValidationArguments): unknown },
  targetName: string,
  property: string,
  constraints: unknown[],
): Check {
  const args = { targetName, property, object: undefined as unknown as object, value: undefined as unknown, constraints } as ValidationArguments;
  let busy = false;
  return (object, value) => {
    if (busy) return constraint.validate(value, { targetName, property, object, value, constraints } as ValidationArguments);
    busy = true;
    args.object = object;
    args.value = value;
    try {
      return constraint.validate(value, args);
    } finally {
      busy = false;
      args.object = undefined as unknown as object;
      args.value = undefined;
    }
  };
}

function buildPlan(cls: Function): Validator | null {
  const storage = getMetadataStorage();
  // The same arguments ValidationExecutor uses without groups / always / strictGroups.
  const metadatas = storage.getTargetValidationMetadatas(cls, '', false, false, undefined);
  if (metadatas.length === 0) return null;
  const grouped = storage.groupByPropertyName(metadatas);
  const properties: PropertyPlan[] = [];
  for (const [name, list] of Object.entries(grouped)) {
    const plan: PropertyPlan = { name, conditions: [], checks: [] };
    // IS_DEFINED first, then the others, as the executor does.
    const ordered = [...list.filter((m) => m.type === ValidationTypes.IS_DEFINED), ...list.filter((m) => m.type !== ValidationTypes.IS_DEFINED)];
    for (const m of ordered) {
      if (m.type === ValidationTypes.WHITELIST) continue;
      if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
        plan.conditions.push(m.constraints[0] as (o: object, v: unknown) => boolean);
        continue;
      }
      if (m.type !== ValidationTypes.CUSTOM_VALIDATION && m.type !== ValidationTypes.IS_DEFINED) return null;
      if (m.each) return null;
      for (const c of storage.getTargetValidatorConstraints(m.constraintCls)) {
        if (c.async) return null;
        const constraints = m.constraints;
        const builtIn = BUILT_IN.has(m.name);
        const check: Check = builtIn
          ? reusingArguments(c.instance, cls.name, name, constraints)
          : (object, value) => c.instance.validate(value, { targetName: cls.name, property: name, object, value, constraints } as ValidationArguments);
        plan.checks.push({ yes: builtIn ? FAST[m.name!]?.(constraints ?? []) : undefined, check });
      }
    }
    properties.push(plan);
  }
  const known = Object.keys(grouped).filter((k) => grouped[k].length > 0);
  return compile(known, properties) ?? interpret(new Set(known), properties);
}

/**
 * The plan as one generated function. Property names enter the code only as JSON string
 * literals; every check, fast yes and condition is passed in as a parameter of its own (one call
 * site each). Undefined when code cannot be generated here.
 */
function compile(known: readonly string[], properties: readonly PropertyPlan[]): Validator | undefined {
  const params: string[] = [];
  const args: unknown[] = [];
  const pass = (value: unknown): string => {
    params.push(`p${params.length}`);
    args.push(value);
    return params[params.length - 1];
  };
  const lines: string[] = [];
  // Own enumerable keys outside the whitelist: validateSync decides (forbidNonWhitelisted).
  const cases = known.map((k) => `case ${JSON.stringify(k)}:`).join(' ');
  lines.push(`for (const k in o) { switch (k) { ${cases} continue; default: if (${pass(Object.hasOwn)}(o, k)) return undefined; } }`, 'let v;');
  for (const p of properties) {
    lines.push(`v = o[${JSON.stringify(p.name)}];`);
    const checks = p.checks.map((c) => {
      const call = `${pass(c.check)}(o, v) !== true`;
      return `if (${c.yes ? `!${pass(c.yes)}(v) && ` : ''}${call}) return undefined;`;
    });
    if (p.conditions.length === 0) lines.push(...checks);
    else {
      // Every condition runs, as in validateSync; the checks only when all of them hold.
      lines.push('{ let applies = true;', ...p.conditions.map((c) => `if (!${pass(c)}(o, v)) applies = false;`), 'if (applies) {', ...checks, '} }');
    }
  }
  lines.push('return true;');
  try {
    return new Function(...params, `return function certainlyValid(o) {\n${lines.join('\n')}\n};`)(...args) as Validator;
  } catch (err) {
    // Code generation disallowed; anything else is a bug here, not a reason to run slower unseen.
    if (err instanceof EvalError) return undefined;
    throw err;
  }
}

/** The plan run as a loop: where compile() cannot generate code. */
function interpret(known: ReadonlySet<string>, properties: readonly PropertyPlan[]): Validator {
  return (instance) => {
    // for-in, not Object.keys: no array of names allocated per message.
    for (const key in instance) if (Object.hasOwn(instance, key) && !known.has(key)) return undefined;
    for (const p of properties) {
      const value = (instance as Record<string, unknown>)[p.name];
      let applies = true;
      for (const condition of p.conditions) if (!condition(instance, value)) applies = false;
      if (!applies) continue;
      for (const c of p.checks) {
        if (c.yes?.(value)) continue;
        if (c.check(instance, value) !== true) return undefined; // false, or a promise: validateSync decides
      }
    }
    return true;
  };
}

/** True when the instance is certainly valid (whitelist + forbidNonWhitelisted); undefined: ask validateSync. */
export function certainlyValid(instance: object): true | undefined {
  const cls = instance.constructor;
  let validate = validators.get(cls);
  if (validate === undefined) validators.set(cls, (validate = buildPlan(cls)));
  return validate ? validate(instance) : undefined;
}

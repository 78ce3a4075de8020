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
 */
import * as classValidator from 'class-validator';
import { getMetadataStorage, ValidationArguments, ValidationTypes } from 'class-validator';

type Check = (object: object, value: unknown) => unknown;
interface PropertyPlan {
  readonly name: string;
  readonly conditions: Array<(object: object, value: unknown) => boolean>;
  readonly checks: Check[];
}
interface Plan {
  readonly known: ReadonlySet<string>;
  readonly properties: readonly PropertyPlan[];
}

const plans = new WeakMap<Function, Plan | null>();

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
 * Anything else goes to the constraint itself.
 */
function plainLength(check: Check, constraints: unknown[]): Check {
  const min = (constraints[0] as number) || 0;
  const max = constraints[1] as number | undefined;
  return (object, value) => {
    if (typeof value === 'string' && value.length >= min && (max === undefined || value.length <= max)) {
      let plain = true;
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if ((c >= 0xd800 && c <= 0xdbff) || c === 0xfe0e || c === 0xfe0f) {
          plain = false;
          break;
        }
      }
      if (plain) return true;
    }
    return check(object, value);
  };
}

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

function buildPlan(cls: Function): Plan | null {
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
        let check: Check = BUILT_IN.has(m.name)
          ? reusingArguments(c.instance, cls.name, name, constraints)
          : (object, value) => c.instance.validate(value, { targetName: cls.name, property: name, object, value, constraints } as ValidationArguments);
        if (m.name === classValidator.IS_LENGTH) check = plainLength(check, constraints);
        plan.checks.push(check);
      }
    }
    properties.push(plan);
  }
  return { known: new Set(Object.keys(grouped).filter((k) => grouped[k].length > 0)), properties };
}

/** True when the instance is certainly valid (whitelist + forbidNonWhitelisted); undefined: ask validateSync. */
export function certainlyValid(instance: object): true | undefined {
  const cls = instance.constructor;
  let plan = plans.get(cls);
  if (plan === undefined) plans.set(cls, (plan = buildPlan(cls)));
  if (!plan) return undefined;
  // for-in, not Object.keys: no array of names allocated per message.
  for (const key in instance) if (Object.hasOwn(instance, key) && !plan.known.has(key)) return undefined;
  for (const p of plan.properties) {
    const value = (instance as Record<string, unknown>)[p.name];
    let applies = true;
    for (const condition of p.conditions) if (!condition(instance, value)) applies = false;
    if (!applies) continue;
    for (const check of p.checks) {
      const ok = check(instance, value);
      if (ok !== true) return undefined; // false, or a promise: validateSync decides
    }
  }
  return true;
}

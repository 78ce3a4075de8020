/**
 * The known keys of an options interface, for the start-up check that reports an unknown option
 * (a typo) instead of ignoring it. The list is derived from the interface: `optionKeys<T>()`
 * takes every key of `T` and nothing else, so an option added to the interface and not here (or
 * the other way round) does not compile.
 */

/** The keys of `T` as a set; `keys` must name each key of `T` exactly once (checked by the compiler). */
export function optionKeys<T extends object>(keys: { readonly [K in keyof Required<T>]: true }): ReadonlySet<string> {
  return new Set(Object.keys(keys));
}

/** Adds a problem for each key of `value` not in `allowed`. */
export function unknownKeys(value: object, allowed: ReadonlySet<string>, where: string, problems: string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) problems.push(`${where}: unknown option "${key}" (known: ${[...allowed].join(', ')})`);
  }
}

/**
 * What a test's child process was told through its environment: the value of `name`, or an
 * error naming the variable when the parent did not set it (a child started wrongly fails at
 * once and says why, rather than running with `undefined`).
 */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

/**
 * The test framework the suite registers its cases with. The suite needs no test library of its
 * own (it asserts with `node:assert`): it is given `describe`, `it` and `afterEach`, by default
 * mocha's globals, so neither mocha nor anything else becomes a dependency of Courier.
 */

/** What the suite asks of a test framework. */
export interface TestRunner {
  /** Groups cases; `body` registers them synchronously. */
  describe(name: string, body: () => void): void;
  /** One case; it fails when `body` rejects, or after `timeoutMs`. */
  it(name: string, body: () => Promise<void>, timeoutMs: number): void;
  /** Runs after each case of the enclosing describe, failures included. */
  afterEach(body: () => Promise<void>, timeoutMs: number): void;
}

interface MochaLike {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): { timeout(ms: number): unknown };
  afterEach(body: (this: { timeout(ms: number): unknown }) => Promise<void>): unknown;
}

/**
 * The runner over mocha's globals (`describe`, `it`, `afterEach`), for a spec file run by mocha.
 * Throws when they are not defined (the suite is registered outside mocha without a runner).
 */
export function mochaGlobals(): TestRunner {
  const g = globalThis as unknown as Partial<MochaLike>;
  const { describe, it, afterEach } = g;
  if (typeof describe !== 'function' || typeof it !== 'function' || typeof afterEach !== 'function') {
    throw new TypeError('describeTransport: no `describe`/`it`/`afterEach` globals (not run by mocha): pass `runner`');
  }
  return {
    describe: (name, body) => void describe(name, body),
    it: (name, body, timeoutMs) => void it(name, body).timeout(timeoutMs),
    afterEach: (body, timeoutMs) =>
      void afterEach(function () {
        this.timeout(timeoutMs);
        return body();
      }),
  };
}

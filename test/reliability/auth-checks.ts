/**
 * The authentication-failure checks both broker adapters must pass (issue 14, point 7), written
 * once: a wrong password fails connect() at once with AuthenticationError naming user and
 * broker, and the password appears in no text a user could print of the error or of an event.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { AuthenticationError } from '../../lib';
import { bounded } from './amqp-harness';

/** Every text a user could print of an error, its causes included. */
export function errorTexts(err: unknown): string {
  const parts = [String(err), JSON.stringify(err), inspect(err, { depth: 6 })];
  for (let e: unknown = err, i = 0; e instanceof Error && i < 6; i++, e = (e as Error & { cause?: unknown }).cause) {
    parts.push(e.message, String(e.stack), JSON.stringify(e));
  }
  return parts.join('\n');
}

/** What the checks use of a broker transport (both adapters' classes have it). */
export interface ConnectingTransport {
  connect(): Promise<void>;
  close(options?: { timeoutMs?: number }): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface AuthExpectation {
  /** The user the error must name. */
  readonly user: string;
  /** `host:port` the error must name. */
  readonly broker: string;
  /** The wrong password, which must appear nowhere. */
  readonly canary: string;
  /** The transport's connect timeout: "at once" is within half of it. */
  readonly connectTimeoutMs: number;
}

/** Connects `t` with the wrong password, asserts the refusal as above, closes `t`; returns the error. */
export async function assertRefusedAtOnce(t: ConnectingTransport, expect: AuthExpectation): Promise<AuthenticationError> {
  const events: unknown[] = [];
  t.on('error', (e) => events.push(e));
  const t0 = Date.now();
  const err = await bounded(t.connect(), 30_000, 'connect with a wrong password').then(
    () => assert.fail('the login should fail'),
    (e: unknown) => e,
  );
  const ms = Date.now() - t0;
  await t.close({ timeoutMs: 500 });
  console.log(`      after ${ms} ms: ${(err as Error).name}: ${(err as Error).message}`);
  assert.ok(err instanceof AuthenticationError, `${err}`);
  assert.ok(ms < expect.connectTimeoutMs / 2, `failed at once, not after retries or the connect timeout (${ms} ms)`);
  assert.equal(err.user, expect.user);
  assert.equal(err.broker, expect.broker);
  assert.match(err.message, new RegExp(`user "${expect.user}" at ${expect.broker.replace(/\./g, '\\.')}`));
  assert.ok(!errorTexts(err).includes(expect.canary), 'the password appears nowhere in the error');
  assert.ok(!events.some((e) => errorTexts(e).includes(expect.canary)), 'nor in an error event');
  return err;
}

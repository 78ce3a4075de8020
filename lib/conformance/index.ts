/**
 * `courier-bus/conformance`: the suite every transport adapter runs (Watermill's universal
 * pub/sub tests, for Courier). An adapter, Courier's own or a third party's, is ready when it
 * passes:
 *
 * ```ts
 * import { describeTransport } from 'courier-bus/conformance';
 * describeTransport('my-broker', { create: () => myTransport({ url }), purge: deleteQueues });
 * ```
 *
 * The cases are chosen by the transport's `capabilities` (a transport that claims no
 * `requestReply` runs no request/reply case; the first case names what was left out) and assert
 * the exact headers of retries and dead letters. The suite asserts with `node:assert` and
 * registers its cases through a {@link TestRunner}: mocha's globals by default; Courier depends
 * on no test library.
 *
 * Every case uses fresh topic and group names, and calls `target.purge` for every subscription it
 * made, so runs against a shared broker leave nothing behind.
 */
import type { SubscriptionSpec, Transport, TransportCapabilities } from '../transport';
import type { SuiteContext } from './context';
import { deliveryCases } from './delivery';
import { lifecycleCases } from './lifecycle';
import { requestReplyCases } from './request-reply';
import { mochaGlobals, TestRunner } from './runner';
import { settlingCases } from './settling';
import { subscriptionCases } from './subscriptions';

export type { TestRunner } from './runner';
export { mochaGlobals } from './runner';
export { CHOSEN_BY } from './lifecycle';
export { testMessage, bodyN } from './messages';
export { waitFor, sleep, uniq } from './wait';

export interface ConformanceTarget {
  /** A new, unconnected transport: a separate client of the same broker each call. */
  create(): Transport | Promise<Transport>;
  /**
   * What the transport claims, to choose the cases by (they are registered before any transport
   * is made). Default: the `capabilities` of a transport that `create()` returns synchronously
   * (it is not connected: a transport does no I/O in its constructor). A case checks that every
   * transport made claims the same.
   */
  capabilities?: TransportCapabilities;
  /** Delete what the subscriptions left on the broker (queues, sessions). */
  purge?(specs: SubscriptionSpec[]): Promise<void>;
  /** How long to wait for a delivery; brokers need more than memory. Default 5000. */
  timeoutMs?: number;
  /** Registers the cases. Default: mocha's globals ({@link mochaGlobals}). */
  runner?: TestRunner;
}

function capabilitiesOf(target: ConformanceTarget): TransportCapabilities {
  if (target.capabilities) return target.capabilities;
  const made = target.create();
  if (made instanceof Promise) {
    void made.then((t) => t.close(), () => undefined);
    throw new TypeError('describeTransport: create() returns a promise, so pass `capabilities` to choose the cases by');
  }
  const caps = made.capabilities;
  void made.close().catch(() => undefined);
  return caps;
}

/** Registers the conformance suite of `target` as `conformance: <name>`. */
export function describeTransport(name: string, target: ConformanceTarget): void {
  const runner = target.runner ?? mochaGlobals();
  const caps = capabilitiesOf(target);
  const wait = target.timeoutMs ?? 5000;
  const caseTimeout = wait * 6;
  runner.describe(`conformance: ${name}`, () => {
    let open: Transport[] = [];
    let specs: SubscriptionSpec[] = [];

    const ctx: SuiteContext = {
      wait,
      caps,
      async transport() {
        const t = await target.create();
        open.push(t);
        return t;
      },
      spec(partial) {
        const s: SubscriptionSpec = { name: 'handler', prefetch: 10, ...partial };
        specs.push(s);
        return s;
      },
      it: (caseName, body, timeoutMs = caseTimeout) => runner.it(caseName, body, timeoutMs),
    };

    runner.afterEach(async () => {
      const closing = open;
      const purging = specs;
      open = [];
      specs = [];
      await Promise.all(closing.map((t) => t.close({ timeoutMs: 2000 }).catch(() => undefined)));
      if (target.purge && purging.length) await target.purge(purging);
    }, caseTimeout);

    lifecycleCases(ctx);
    deliveryCases(ctx);
    subscriptionCases(ctx);
    settlingCases(ctx);
    requestReplyCases(ctx);
  });
}

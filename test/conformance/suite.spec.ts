// The conformance suite itself (courier-bus/conformance): its cases are chosen by the
// transport's capabilities, and its exact header assertions catch a drift such as the memory
// transport's old `courierdeadqueue` (`group.Class.method`, the queue's name) - the negative
// control of the drift fix. The suite's runs on each adapter are test/adapters/*/conformance.spec.ts.
import assert from 'node:assert/strict';
import { CHOSEN_BY, describeTransport, TestRunner } from 'courier-bus/conformance';
import { DeliveryHandler, Headers, Subscription, SubscriptionSpec, TransportCapabilities, TransportWrapper, withDelivery } from 'courier-bus';
import { memoryTransport, MemoryBroker } from 'courier-bus/memory';

interface Recorded {
  readonly suites: string[];
  readonly cases: Map<string, { body: () => Promise<void>; timeoutMs: number }>;
  afterEach?: () => Promise<void>;
}

/** A runner that records what the suite registers, to run chosen cases by hand. */
function recorder(): { runner: TestRunner; rec: Recorded } {
  const rec: Recorded = { suites: [], cases: new Map() };
  const runner: TestRunner = {
    describe: (name, body) => {
      rec.suites.push(name);
      body();
    },
    it: (name, body, timeoutMs) => void rec.cases.set(name, { body, timeoutMs }),
    afterEach: (body) => void (rec.afterEach = body),
  };
  return { runner, rec };
}

async function run(rec: Recorded, name: string): Promise<void> {
  const c = rec.cases.get(name);
  assert.ok(c, `case '${name}' registered`);
  try {
    await c.body();
  } finally {
    await rec.afterEach?.();
  }
}

/** Reads dead letters as a drifted transport wrote them: `courierdeadqueue` as the queue name `group.name`. */
class DriftedDeadQueue extends TransportWrapper {
  override subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.inner.subscribeDeadLetters(of, (d) =>
      handler(withDelivery(d, { headers: { ...d.headers, [Headers.deadQueue]: `${of.group}.${of.name}` } })),
    );
  }
}

const CLAIMS = 'claims the capabilities its cases were chosen by';
const DEAD = 'dead letter: the message is kept with its reason headers';
const DEAD_RETRIED = 'dead letter after retries: the attempt it failed on, the error with its secrets redacted';

describe('conformance suite (courier-bus/conformance)', () => {
  const full = memoryTransport().capabilities;

  it('registers every case for a transport that claims every capability, under `conformance: <name>`', () => {
    const { runner, rec } = recorder();
    const broker = new MemoryBroker();
    describeTransport('memory', { create: () => memoryTransport({ broker }), runner });
    assert.deepEqual(rec.suites, ['conformance: memory']);
    assert.equal(rec.cases.size, 26, [...rec.cases.keys()].join('\n'));
    assert.ok(rec.cases.has(CLAIMS), 'nothing left out');
    assert.ok(rec.afterEach, 'cleans up after each case');
  });

  it('leaves out the cases of what a transport does not claim, and says so in the first case', () => {
    const lacking: TransportCapabilities = { ...full, requestReply: false, deadLetter: false, instanceSubscriptions: false, mandatory: false };
    const { runner, rec } = recorder();
    describeTransport('lacking', { create: () => memoryTransport(), capabilities: lacking, runner });
    const names = [...rec.cases.keys()];
    assert.equal(names.slice(1).filter((n) => /request|dead letter|instance subscription|mandatory/.test(n)).length, 0, names.join('\n'));
    assert.equal(names[0], `${CLAIMS} (not run, not claimed: instanceSubscriptions, deadLetter, requestReply, mandatory)`);
    assert.equal(rec.cases.size, 26 - 3 - 3 - 3 - 1);
    assert.ok(CHOSEN_BY.includes('requestReply'));
  });

  it('fails a transport that claims other capabilities than it was chosen by', async () => {
    const { runner, rec } = recorder();
    describeTransport('liar', { create: () => memoryTransport(), capabilities: { ...full, weightedConsumers: false }, runner });
    await assert.rejects(run(rec, CLAIMS), /claims the same/);
  });

  it('wants the capabilities when create() is asynchronous', () => {
    assert.throws(() => describeTransport('async', { create: async () => memoryTransport(), runner: recorder().runner }), /pass `capabilities`/);
  });

  it("catches the old memory drift: courierdeadqueue `group.name` instead of `group/name` fails the exact cases (which pass without it)", async function () {
    this.timeout(20_000);
    const broker = new MemoryBroker();
    const drifted = recorder();
    describeTransport('drifted', { create: () => new DriftedDeadQueue(memoryTransport({ broker })), capabilities: full, runner: drifted.runner, timeoutMs: 2000 });
    await assert.rejects(run(drifted.rec, DEAD), (err: Error) => {
      assert.match(err.message, /courierdeadqueue/);
      assert.match(err.message, /\.handler/);
      return true;
    });
    await assert.rejects(run(drifted.rec, DEAD_RETRIED), /courierdeadqueue/);
    const plain = recorder();
    describeTransport('plain', { create: () => memoryTransport({ broker }), runner: plain.runner, timeoutMs: 2000 });
    await run(plain.rec, DEAD);
    await run(plain.rec, DEAD_RETRIED);
  });
});

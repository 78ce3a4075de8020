/**
 * Issue 21, point 5: the demo shows a late-starting replica catching up, run as a user runs it
 * (`courier demo --transport amqp --late-replica`, the built command; samples/demo/late-replica.ts).
 */
import assert from 'node:assert/strict';
import { amqpBroker } from '../helpers/brokers';
import { start } from '../ops/cli';

describe('scaling: courier demo --late-replica', function () {
  this.timeout(120_000);

  it('a replica started after 1,000 sales catches up from the stream, follows, and resumes after a stop', async () => {
    const { url } = await amqpBroker();
    const ran = await start(['demo', '--transport', 'amqp', '--url', url, '--late-replica', '--orders', '1000', '--json'], { timeoutMs: 100_000 }).exit;
    assert.equal(ran.code, 0, ran.stderr);
    const summary = JSON.parse(ran.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.equal(summary.ok, true);
    assert.equal(summary.caughtUp, 1000);
    assert.equal(summary.totalsEqual, true);
    // A stop writes its position: the restart handles nothing twice.
    assert.equal(summary.handledTwiceAfterRestart, 0);
  });

  it('needs AMQP', async () => {
    const ran = await start(['demo', '--late-replica'], { timeoutMs: 30_000 }).exit;
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /--late-replica needs --transport amqp/);
  });
});

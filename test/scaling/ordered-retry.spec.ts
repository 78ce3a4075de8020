/**
 * Issue 21, point 4: a retry in a partition waits in place. A handler that fails the first attempt
 * of one step retries it (after its delay) before any later step of that key is handled, while
 * the other keys go on; an exhausted step goes to the dead letter and the key's next step follows.
 * Negative control: the same failures on a plain group let the later steps overtake the retry.
 */
import assert from 'node:assert/strict';
import { amqpTransport } from '../../adapters/amqp';
import { createBus, MessageContext, RejectMessageError, silentLogger, Subscribe, Subscriber } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { uniq, waitFor } from '../helpers/wait';
import { stepClass, StepShape } from './fixtures/steps';
import { deleteAll } from './scaling-harness';

describe('scaling, AMQP: retries in a partition wait in place', function () {
  this.timeout(60_000);

  async function run(ordered: boolean) {
    const { url } = await amqpBroker();
    const tag = uniq('ordretry');
    const Step = stepClass(`${tag}.step`);
    const seen: Array<{ key: string; seq: number; attempt: number }> = [];
    @Subscriber({ group: `${tag}.g` })
    class Steps {
      @Subscribe(Step, ordered ? { ordered: { key: 'orderId', partitions: 2 }, retry: { attempts: 3, initialDelayMs: 200 } } : { prefetch: 10, retry: { attempts: 3, initialDelayMs: 200 } })
      async on(s: StepShape, ctx: MessageContext): Promise<void> {
        seen.push({ key: s.orderId, seq: s.seq, attempt: ctx.attempt });
        if (s.orderId === 'a' && s.seq === 2 && ctx.attempt === 1) throw new Error('transient');
        if (s.orderId === 'b' && s.seq === 1) throw new RejectMessageError('poison');
      }
    }
    const name = `${tag}.g.Steps.on`;
    const bus = createBus({ transport: amqpTransport({ url, exchange: tag }), source: tag, logger: silentLogger, meter: false });
    bus.register(new Steps());
    try {
      await bus.start();
      for (let seq = 0; seq < 6; seq++) for (const orderId of ['a', 'b', 'c']) await bus.publish(Step, { orderId, seq });
      await waitFor(() => seen.length >= 19, 20_000, 'every step (and the retry) handled');
      const order = (key: string) => seen.filter((h) => h.key === key).map((h) => `${h.seq}/${h.attempt}`);
      return { a: order('a'), b: order('b'), c: order('c') };
    } finally {
      await bus.stop();
      await deleteAll([name, `${name}.dead`, `${name}.members`, `${name}.p0`, `${name}.p1`, `${name}.retry.215`, `${name}.retry.181`, `${name}.retry.152`, `${name}.retry.128`, `${name}.retry.108`], [`${name}.partitions`, tag]);
    }
  }

  it('ordered: the retried step comes again before the next one of its key; a rejected one is skipped, the key goes on', async () => {
    const { a, b, c } = await run(true);
    assert.deepEqual(a, ['0/1', '1/1', '2/1', '2/2', '3/1', '4/1', '5/1']);
    assert.deepEqual(b, ['0/1', '1/1', '2/1', '3/1', '4/1', '5/1']);
    assert.deepEqual(c, ['0/1', '1/1', '2/1', '3/1', '4/1', '5/1']);
  });

  it('negative control: on a plain group the later steps overtake the retry (through a delay queue)', async () => {
    const { a } = await run(false);
    assert.notDeepEqual(a, ['0/1', '1/1', '2/1', '2/2', '3/1', '4/1', '5/1']);
    assert.ok(a.indexOf('2/2') > a.indexOf('3/1'), `retry after later steps: ${a.join(' ')}`);
  });
});

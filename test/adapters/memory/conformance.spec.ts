import { describeTransport } from 'courier-bus/conformance';
import { MemoryBroker, memoryTransport } from '../../../adapters/memory';

const broker = new MemoryBroker();
describeTransport('memory', { create: () => memoryTransport({ broker }), timeoutMs: 2000 });

describe('memory transport', () => {
  it('a publisher looping on await publish() lets timers run', async () => {
    const t = memoryTransport();
    await t.subscribe({ pattern: 'loop', group: 'g', name: 'h', prefetch: 100 }, (d) => d.ack());
    await t.connect();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const until = Date.now() + 100;
    let n = 0;
    while (Date.now() < until) {
      await t.publish({ topic: 'loop', body: Buffer.from('{}'), headers: {} });
      n++;
    }
    clearInterval(timer);
    await t.close();
    if (ticks === 0) throw new Error(`no timer ran during ${n} publishes`);
  });
});

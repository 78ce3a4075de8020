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

  it('handlers that publish to each other without awaiting let timers run', async () => {
    // A publish is routed at once; only the dispatch to consumers waits for the due turn of the
    // event loop (every 5 ms). Without that wait this ping-pong runs in microtasks for its whole
    // 100 ms and no timer runs before it ends.
    const t = memoryTransport();
    const until = Date.now() + 100;
    let handled = 0;
    let ticks = 0;
    let ticksWhileBouncing: number | undefined;
    const bounce = (to: string) => (d: { ack(): Promise<void> }) => {
      handled++;
      if (Date.now() < until) void t.publish({ topic: to, body: Buffer.from('{}'), headers: {} });
      else ticksWhileBouncing ??= ticks;
      return d.ack();
    };
    await t.subscribe({ pattern: 'ping', group: 'g', name: 'ping', prefetch: 10 }, bounce('pong'));
    await t.subscribe({ pattern: 'pong', group: 'g', name: 'pong', prefetch: 10 }, bounce('ping'));
    await t.connect();
    const timer = setInterval(() => ticks++, 1);
    await t.publish({ topic: 'ping', body: Buffer.from('{}'), headers: {} });
    while (ticksWhileBouncing === undefined && Date.now() < until + 2000) await new Promise((r) => setTimeout(r, 5));
    clearInterval(timer);
    await t.close();
    if (handled < 100) throw new Error(`the ping-pong stopped early: ${handled} handled`);
    if (!(ticksWhileBouncing! >= 5)) throw new Error(`${ticksWhileBouncing} timer ticks during ${handled} handlings in 100 ms`);
  });
});

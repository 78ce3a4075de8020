/**
 * Issue 21, point 5: replay from a RabbitMQ stream. A type declared with `history` is kept in its
 * stream from its first publish; a late group (a child process, fixtures/replay-worker.ts) reads
 * it from the first message, is SIGKILLed midway and restarted: it resumes from its stored
 * position (counted: re-handled, lost). From an offset and from a time (to the millisecond, not
 * from the start of its second as the stream hands it over: a plain consumer shows the difference),
 * also when the clients' clock is ahead of the broker's (negative control: no clock margin).
 * Refused where there is no history (memory, MQTT).
 */
import assert from 'node:assert/strict';
import amqp from 'amqplib';
import { amqpTransport } from '../../adapters/amqp';
import { createBus, silentLogger, Subscribe, Subscriber } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { entryClass } from './fixtures/entries';
import { deleteAll, refusedWithoutCapability, spawnWorker, Worker } from './scaling-harness';

const N = 600;

function handled(w: Worker): number[] {
  return w.lines.map((l) => /^H (\d+)$/.exec(l)).filter((m): m is RegExpExecArray => !!m).map((m) => Number(m[1]));
}

describe('scaling, AMQP: replay from a stream, a late replica', function () {
  this.timeout(120_000);
  const workers: Worker[] = [];
  let cleanup: { queues: string[]; exchanges: string[] } = { queues: [], exchanges: [] };
  let url: string;
  let run: string;
  let exchange: string;
  let type: string;
  let Entry: ReturnType<typeof entryClass>;
  let publisher: ReturnType<typeof createBus>;

  before(async () => {
    url = (await amqpBroker()).url;
    run = uniq('rep');
    exchange = `${run}.events`;
    type = `${run}.entry`;
    Entry = entryClass(type);
    cleanup = { queues: [`${exchange}.history.${type}`], exchanges: [exchange] };
    publisher = createBus({ transport: amqpTransport({ url, exchange }), source: 'replay-publisher', logger: silentLogger, meter: false });
    await publisher.start();
    // Published before any replica exists: only the history has them.
    const all: Promise<string>[] = [];
    for (let n = 0; n < N; n++) all.push(publisher.publish(Entry, { n }));
    await Promise.all(all);
  });

  afterEach(() => {
    for (const w of workers.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  });

  after(async () => {
    await publisher?.stop();
    await deleteAll(cleanup.queues, cleanup.exchanges);
  });

  function replica(group: string, from: string, delayMs: number, env: Record<string, string> = {}): Worker {
    const name = `${group}.Replica.onEntry`;
    cleanup.queues.push(`${name}.position`, `${name}.dead`);
    const w = spawnWorker('replay-worker.ts', group, { REP_URL: url, REP_EXCHANGE: exchange, REP_TYPE: type, REP_GROUP: group, REP_FROM: from, REP_DELAY_MS: String(delayMs), ...env });
    workers.push(w);
    return w;
  }

  it('a late group reads everything from the first message; SIGKILLed midway and restarted, it resumes from its stored position', async () => {
    const group = `${run}.late`;
    const first = replica(group, 'first', 20);
    await first.ready;
    await waitFor(() => handled(first).length >= N * 0.4, 60_000, '40 % handled');
    first.child.kill('SIGKILL');
    await first.exited;
    const before = handled(first);
    const second = replica(group, 'first', 0);
    await second.ready;
    await waitFor(() => new Set([...before, ...handled(second)]).size >= N, 60_000, 'every entry handled').catch(() => undefined);
    await sleep(300);
    const after = handled(second);
    const seen = new Set([...before, ...after]);
    const lost = Array.from({ length: N }, (_, n) => n).filter((n) => !seen.has(n)).length;
    const rehandled = after.filter((n) => before.includes(n)).length;
    const resumedAt = Math.min(...after);
    console.log(`      replay: first run ${before.length} handled, killed; restart resumed at ${resumedAt}, handled ${after.length}, re-handled ${rehandled}, lost ${lost}`);
    assert.equal(lost, 0, 'lost');
    assert.deepEqual([...before].sort((a, b) => a - b), [...new Set(before)].sort((a, b) => a - b), 'no duplicate within a run');
    assert.ok(resumedAt > 0, 'the restart did not start again from the first message');
    assert.ok(rehandled < before.length, `re-handled ${rehandled} of ${before.length}: it resumed near where it stopped`);
    // In order: a stream is read in publish order.
    assert.deepEqual(after, [...after].sort((a, b) => a - b));
  });

  it('from an offset: what follows it, nothing before', async () => {
    const w = replica(`${run}.offset`, '400', 0);
    await w.ready;
    await waitFor(() => handled(w).length >= N - 400, 30_000, 'entries from 400');
    await sleep(300);
    assert.deepEqual(handled(w), Array.from({ length: N - 400 }, (_, i) => 400 + i));
  });

  it('from a time: what was published at or after it, nothing before, within its second too', async () => {
    // Entries published earlier in the same second as the Date: the stream attaches at the first
    // chunk of that second (AMQP timestamps are seconds) and hands them over; Courier skips them.
    let next = N;
    const early: number[] = [];
    let at: Date | undefined;
    for (let tries = 0; tries < 5 && at === undefined; tries++) {
      await waitFor(() => Date.now() % 1000 >= 50 && Date.now() % 1000 <= 300, 2_000, 'the start of a second');
      const second = Math.floor(Date.now() / 1000);
      const batch = Array.from({ length: 10 }, () => next++);
      await Promise.all(batch.map((n) => publisher.publish(Entry, { n })));
      early.push(...batch);
      await sleep(5);
      const t = new Date();
      if (Math.floor(t.getTime() / 1000) === second) at = t;
    }
    assert.ok(at, 'could not publish 10 entries within one second in 5 tries');
    await sleep(5);
    // First after the Date, in its second: a plain publisher's entry with only an AMQP timestamp
    // (whole seconds), which may stand for any moment of that second: it is not skipped.
    const plain = next++;
    await publishPlain(plain, Math.floor(Date.now() / 1000));
    const later = Array.from({ length: 50 }, () => next++);
    await Promise.all(later.map((n) => publisher.publish(Entry, { n })));

    // The control: a plain consumer attached where Courier attaches (the default
    // replayClockMarginMs, 10 s, before the Date's second) gets early entries too.
    const fromStream = await readStreamAt(`${exchange}.history.${type}`, Math.floor((at.getTime() - 10_000) / 1000), later[later.length - 1]);
    assert.ok(fromStream.some((n) => early.includes(n)), `the stream handed over none of ${JSON.stringify(early)}: ${JSON.stringify(fromStream)}`);

    const w = replica(`${run}.time`, at.toISOString(), 0);
    await w.ready;
    await waitFor(() => handled(w).length >= later.length + 1, 30_000, 'the later batch').catch((err: Error) => {
      throw new Error(`${err.message}: handled ${JSON.stringify(handled(w))}; worker said ${JSON.stringify(w.lines.slice(-5))}`);
    });
    await sleep(300);
    assert.deepEqual(handled(w), [plain, ...later]);
  });

  /** Entry `n` from a plain amqplib publisher: no CloudEvents headers, an AMQP timestamp of `seconds`. */
  async function publishPlain(n: number, seconds: number): Promise<void> {
    const conn = await amqp.connect(url);
    try {
      const ch = await conn.createConfirmChannel();
      ch.publish(exchange, type, Buffer.from(JSON.stringify({ n })), { contentType: 'application/json', type, messageId: `plain-${n}`, timestamp: seconds, persistent: true });
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
  }

  /** Publishes 10 early entries, a time, 50 later ones from a process whose clock is `aheadMs` ahead (fixtures/replay-publisher.ts). */
  async function publishAhead(first: number, aheadMs: number): Promise<{ early: number[]; at: string; later: number[] }> {
    const p = spawnWorker('replay-publisher.ts', 'publisher', { REP_URL: url, REP_EXCHANGE: exchange, REP_TYPE: type, REP_FIRST: String(first), REP_CLOCK_AHEAD_MS: String(aheadMs) });
    workers.push(p); // killed after the test if it is still running (a timeout)
    const { code } = await Promise.race([p.exited, sleep(30_000).then(() => ({ code: 'timeout' }))]);
    assert.equal(code, 0, `the publisher ended with ${code}: ${p.lines.join(' | ')}`);
    return JSON.parse(p.lines[0]) as { early: number[]; at: string; later: number[] };
  }

  it('from a time, the clients\' clock 5 s ahead of the broker\'s: the later entries, none before (negative control: no margin reads nothing)', async () => {
    // The stream finds the time by the broker's clock, the Date and the CloudEvents times are the
    // clients'. A broker 5 s behind: with no margin the stream attaches at its end and nothing
    // published at the Date is read; with the default margin (10 s) exactly the later ones are.
    const ahead = { REP_CLOCK_AHEAD_MS: '5000' };
    const guarded = await publishAhead(10_000, 5000);
    const w = replica(`${run}.ahead`, guarded.at, 0, ahead);
    const unguarded = await publishAhead(20_000, 5000);
    const control = replica(`${run}.ahead-nomargin`, unguarded.at, 0, { ...ahead, REP_CLOCK_MARGIN_MS: '0' });
    await Promise.all([w.ready, control.ready]);
    // w reads on: the second publisher's entries, all published after its Date, are its too.
    const expected = [...guarded.later, ...unguarded.early, ...unguarded.later];
    await waitFor(() => handled(w).length >= expected.length, 30_000, 'the later batches').catch((err: Error) => {
      throw new Error(`${err.message}: handled ${JSON.stringify(handled(w))}`);
    });
    await sleep(1500);
    assert.deepEqual(handled(w), expected, 'with the margin');
    const got = handled(control);
    const lost = unguarded.later.filter((n) => !got.includes(n)).length;
    console.log(`      clock 5 s ahead: margin 10 s handled ${handled(w).length}, lost 0; margin 0 handled ${got.length}, lost ${lost} of ${unguarded.later.length}`);
    assert.equal(lost, unguarded.later.length, `the control read ${JSON.stringify(got)}: it attached before the Date`);
  });

  /** What a plain amqplib consumer reads of the stream from the AMQP timestamp `seconds`, up to entry `last`. */
  async function readStreamAt(queue: string, seconds: number, last: number): Promise<number[]> {
    const conn = await amqp.connect(url);
    try {
      const ch = await conn.createChannel();
      await ch.prefetch(100);
      const seen: number[] = [];
      await ch.consume(queue, (m) => {
        if (!m) return;
        seen.push((JSON.parse(m.content.toString('utf8')) as { n: number }).n);
        ch.ack(m);
      }, { arguments: { 'x-stream-offset': { '!': 'timestamp', value: seconds } } });
      await waitFor(() => seen.includes(last), 10_000, 'the raw stream consumer').catch((err: Error) => {
        throw new Error(`${err.message} (attached at ${new Date(seconds * 1000).toISOString()}, now ${new Date().toISOString()}): read ${seen.length}, the last ${JSON.stringify(seen.slice(-5))}`);
      });
      return seen;
    } finally {
      await conn.close();
    }
  }
});

describe('scaling: replay is refused where there is no history', () => {
  const Entry = entryClass('refused.entry');
  @Subscriber({ group: 'refused' })
  class Replica {
    @Subscribe(Entry, { replay: { from: 'first' } })
    onEntry(): void {}
  }

  refusedWithoutCapability(() => new Replica(), /replay needs a transport with message history/);
});

// The adapter kit (courier-bus/adapter-kit), imported by its package name as a third-party
// adapter does; no broker needed.
import assert from 'node:assert/strict';
import {
  backoffDelay,
  deadLetterHeaders,
  deadLetterQueueLabel,
  InFlight,
  PublishWindow,
  SafeEmitter,
  SettleOnce,
  SettleState,
  Wakeup,
  WindowEntry,
} from 'courier-bus/adapter-kit';
import { Headers, PublishTimeoutError, TransportEvents } from 'courier-bus';
import { sleep } from '../helpers/wait';

describe('adapter kit', () => {
  describe('deadLetterHeaders', () => {
    const time = new Date('2026-01-02T03:04:05.678Z');

    it('writes reason, error, redacted message, queue `group/name`, time and attempt; keeps the rest; does not change its input', () => {
      const input = { id: 'm1', [Headers.attempt]: '2', custom: 'x' };
      const out = deadLetterHeaders(input, {
        reason: 'exhausted',
        errorName: 'TypeError',
        errorMessage: 'connect amqp://bob:hunter2@db failed',
        group: 'billing',
        name: 'Invoices.onOrder',
        attempt: 3,
        time,
      });
      assert.deepEqual(out, {
        id: 'm1',
        custom: 'x',
        [Headers.attempt]: '3',
        [Headers.deadReason]: 'exhausted',
        [Headers.deadError]: 'TypeError',
        [Headers.deadMessage]: out[Headers.deadMessage],
        [Headers.deadQueue]: 'billing/Invoices.onOrder',
        [Headers.deadTime]: '2026-01-02T03:04:05.678Z',
      });
      assert.ok(!out[Headers.deadMessage].includes('hunter2'), out[Headers.deadMessage]);
      assert.match(out[Headers.deadMessage], /^connect amqp:\/\/bob:.*@db failed$/);
      assert.deepEqual(input, { id: 'm1', [Headers.attempt]: '2', custom: 'x' });
    });

    it('a broadcast is named by its name alone; without an error the old error headers go', () => {
      const out = deadLetterHeaders(
        { [Headers.deadError]: 'Old', [Headers.deadMessage]: 'old', [Headers.deadReason]: 'invalid' },
        { reason: 'rejected', name: 'Audit.onAny', attempt: 1 },
      );
      assert.equal(out[Headers.deadQueue], 'Audit.onAny');
      assert.equal(out[Headers.deadReason], 'rejected');
      assert.equal(out[Headers.attempt], '1');
      assert.ok(!(Headers.deadError in out) && !(Headers.deadMessage in out), JSON.stringify(out));
      assert.ok(Math.abs(Date.parse(out[Headers.deadTime]) - Date.now()) < 5000, 'time defaults to now');
      assert.equal(deadLetterQueueLabel('g', 'C.m'), 'g/C.m');
      assert.equal(deadLetterQueueLabel(undefined, 'C.m'), 'C.m');
    });
  });

  describe('SafeEmitter', () => {
    it('calls every listener in order even when one throws, reports the exception, never throws', () => {
      const reported: Array<[string, string]> = [];
      const e = new SafeEmitter<TransportEvents>({ onListenerError: (err, event) => reported.push([event, (err as Error).message]) });
      const calls: string[] = [];
      e.on('connected', ({ url }) => calls.push(`a ${url}`));
      e.on('connected', () => {
        throw new Error('listener bug');
      });
      e.on('connected', ({ url }) => calls.push(`c ${url}`));
      assert.equal(e.emit('connected', { url: 'x://' }), true);
      assert.deepEqual(calls, ['a x://', 'c x://']);
      assert.deepEqual(reported, [['connected', 'listener bug']]);
    });

    it("drops an 'error' nobody listens to; once() fires once; off() removes; a listener added during an emit waits for the next", () => {
      const e = new SafeEmitter<TransportEvents>();
      assert.equal(e.emit('error', new Error('nobody listens')), false);
      const seen: string[] = [];
      const once = (err: Error) => seen.push(`once ${err.message}`);
      e.once('error', once);
      const late = () => seen.push('late');
      e.on('error', () => e.on('error', late));
      e.emit('error', new Error('1'));
      e.emit('error', new Error('2'));
      assert.deepEqual(seen, ['once 1', 'late']);
      e.off('error', late);
      e.removeAllListeners('error');
      assert.equal(e.listenerCount('error'), 0);
      const o = () => seen.push('never');
      e.once('disconnected', o);
      e.off('disconnected', o);
      e.emit('disconnected', { url: 'x://' });
      assert.equal(seen.includes('never'), false, 'a once listener removed by off() before its event');
    });

    it('by default reports a listener exception as a process warning', async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        const e = new SafeEmitter<TransportEvents>();
        e.on('error', () => {
          throw new Error('bad listener');
        });
        e.emit('error', new Error('x'));
        await sleep(10);
      } finally {
        process.off('warning', onWarning);
      }
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].name, 'CourierListenerWarning');
      assert.match(warnings[0].message, /'error' listener threw: Error: bad listener/);
    });
  });

  describe('SettleOnce', () => {
    class TestDelivery extends SettleOnce {
      settledCalls = 0;
      protected override onSettled(): void {
        this.settledCalls++;
      }
      run(action: () => void | Promise<void>): Promise<void> {
        return this.settle(action);
      }
      giveBackThenFail(): Promise<void> {
        return this.settle(async () => {
          this.markSettled();
          throw new Error('copy failed after a nack');
        });
      }
    }

    it('runs the first settle only; later ones resolve at once without running; onSettled once', async () => {
      const d = new TestDelivery();
      let runs = 0;
      assert.equal(d.settleState, SettleState.open);
      const first = d.run(async () => {
        runs++;
        await sleep(5);
      });
      assert.equal(d.settleState, SettleState.settling);
      await d.run(() => void runs++); // while settling
      await first;
      await d.run(() => void runs++); // after
      assert.equal(runs, 1);
      assert.equal(d.settleState, SettleState.settled);
      assert.equal(d.isOpen, false);
      assert.equal(d.settledCalls, 1);
    });

    it('a synchronous settle costs no new promise', () => {
      const a = new TestDelivery().run(() => undefined);
      const b = new TestDelivery().run(() => undefined);
      assert.equal(a, b);
    });

    it('an action that throws leaves it open (settle again), unless it marked itself settled first', async () => {
      const d = new TestDelivery();
      await assert.rejects(d.run(() => Promise.reject(new Error('not confirmed'))), /not confirmed/);
      assert.equal(d.settleState, SettleState.open);
      await assert.rejects(
        d.run(() => {
          throw new Error('sync failure');
        }),
        /sync failure/,
      );
      assert.equal(d.isOpen, true);
      await d.run(() => undefined);
      assert.equal(d.settledCalls, 1);

      const n = new TestDelivery();
      await assert.rejects(n.giveBackThenFail(), /after a nack/);
      assert.equal(n.settleState, SettleState.settled);
      assert.equal(n.settledCalls, 1);
    });
  });

  describe('InFlight and Wakeup', () => {
    it('idle() resolves true once the count is 0, false at its timeout; end() never goes below 0', async () => {
      const f = new InFlight();
      assert.equal(await f.idle(0), true, 'idle at once');
      f.begin();
      f.begin();
      assert.equal(await f.idle(20), false, 'timed out with 2 in flight');
      const idle = f.idle(5000);
      f.end();
      assert.equal(f.size, 1);
      setTimeout(() => f.end(), 10);
      assert.equal(await idle, true);
      f.end();
      assert.equal(f.size, 0);
      const tracked = f.track(sleep(10).then(() => 'v'));
      assert.equal(f.size, 1);
      assert.equal(await tracked, 'v');
      assert.equal(f.size, 0);
      await assert.rejects(f.track(Promise.reject(new Error('failed'))), /failed/);
      assert.equal(f.size, 0, 'a failed operation ends too');
    });

    it('until() re-checks its condition on each notify(), not by polling', async () => {
      const w = new Wakeup();
      let value = 0;
      let checks = 0;
      const done = w.until(() => (checks++, value >= 2), 5000);
      value = 2;
      await sleep(30);
      assert.equal(checks, 1, 'not checked again without notify()');
      w.notify();
      assert.equal(await done, true);
      assert.equal(await w.until(() => false, 15), false);
    });

    it('a wait keeps the process alive until its timeout (a close() awaiting a handler that never settles resolves)', async function () {
      this.timeout(20_000);
      // A process with nothing else to do: it must print the wait's outcome, not exit before it.
      const { execFileSync } = await import('node:child_process');
      const kit = require.resolve('../../lib/adapter-kit');
      const script = `const { InFlight } = require(${JSON.stringify(kit)}); const f = new InFlight(); f.begin(); f.idle(200).then((idle) => console.log('idle:' + idle));`;
      const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(out.trim(), 'idle:false');
    });
  });

  describe('backoffDelay', () => {
    const retry = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };

    it('grows by factor from initialDelayMs up to maxDelayMs; jitter takes up to its share off', () => {
      assert.deepEqual([1, 2, 3, 4, 5, 50].map((a) => backoffDelay(retry, a, () => 1)), [100, 200, 400, 800, 1000, 1000]);
      assert.deepEqual([1, 2, 5].map((a) => backoffDelay(retry, a, () => 0)), [50, 100, 500]);
      assert.equal(backoffDelay({ ...retry, jitter: 0 }, 3, () => 0), 400);
      assert.equal(backoffDelay({ ...retry, jitter: 1 }, 3, () => 0), 0);
      assert.equal(backoffDelay({ ...retry, initialDelayMs: 0 }, 5000), 0, 'no NaN from 0 * Infinity');
      assert.equal(backoffDelay(retry, 5000, () => 1), 1000, 'no Infinity');
      assert.equal(backoffDelay(retry, 0, () => 1), 100, 'attempt below 1 counts as 1');
    });

    it('stays within [base * (1 - jitter), base] over many draws', () => {
      for (let i = 0; i < 2000; i++) {
        const attempt = 1 + (i % 6);
        const base = Math.min(1000, 100 * 2 ** (attempt - 1));
        const d = backoffDelay(retry, attempt);
        assert.ok(d >= Math.round(base / 2) && d <= base, `attempt ${attempt}: ${d}`);
      }
    });
  });

  describe('PublishWindow', () => {
    class Entry extends WindowEntry {
      constructor(readonly n: number, timeoutMs = 5000) {
        super(`t${n}`, timeoutMs);
      }
    }
    const make = (limit: number) => {
      const sent: number[] = [];
      const w = new PublishWindow<Entry>({ limit, send: (e) => sent.push(e.n) });
      return { w, sent };
    };

    it('sends at most `limit` at once, the rest in order as slots free; settles each once', async () => {
      const { w, sent } = make(2);
      const entries = [1, 2, 3, 4].map((n) => new Entry(n));
      const results = entries.map((e) => w.submit(e));
      assert.deepEqual(sent, [1, 2]);
      assert.equal(w.sending, 2);
      assert.equal(w.waiting, 2);
      w.finish(entries[0]);
      w.finish(entries[0], new Error('late second answer: ignored'));
      assert.deepEqual(sent, [1, 2, 3]);
      w.finish(entries[1], new Error('refused'));
      w.finish(entries[2]);
      w.finish(entries[3]);
      const settled = await Promise.allSettled(results);
      assert.deepEqual(settled.map((s) => s.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      assert.equal(w.size, 0);
      await w.whenIdle();
    });

    it('fails with PublishTimeoutError what is past its deadline, sent or waiting, in order', async () => {
      const { w, sent } = make(1);
      const a = new Entry(1, 20);
      const b = new Entry(2, 20);
      const order: number[] = [];
      const pa = w.submit(a).catch((err) => (order.push(1), err));
      const pb = w.submit(b).catch((err) => (order.push(2), err));
      const idle = w.whenIdle();
      const [ea, eb] = await Promise.all([pa, pb]);
      assert.ok(ea instanceof PublishTimeoutError && eb instanceof PublishTimeoutError);
      assert.match(String(ea.message), /t1 not confirmed within 20 ms/);
      assert.deepEqual(order, [1, 2]);
      assert.deepEqual(sent, [1], 'the waiting one was never sent');
      await idle;
      assert.equal(w.sending, 0);
    });

    it('pause() holds what comes; release/releaseAll/resubmit give slots back; setLimit; failAll rejects the rest', async () => {
      const { w, sent } = make(2);
      const e = [1, 2, 3].map((n) => new Entry(n));
      const results = e.map((x) => w.submit(x).then(() => 'ok', (err: Error) => err.message));
      assert.deepEqual(sent, [1, 2]);
      w.pause();
      w.releaseAll(); // the connection went: 1 and 2 wait again, ahead of 3
      assert.equal(w.sending, 0);
      w.resume();
      assert.deepEqual(sent, [1, 2, 1, 2]);
      w.release(e[0], false); // resent later
      assert.deepEqual(sent, [1, 2, 1, 2, 3]);
      w.setLimit(3);
      w.resubmit(e[0]);
      assert.deepEqual(sent, [1, 2, 1, 2, 3, 1]);
      w.finish(e[1]);
      w.failAll(new Error('closed'));
      assert.deepEqual(await Promise.all(results), ['closed', 'ok', 'closed']);
      assert.equal(w.size, 0);
    });
  });
});

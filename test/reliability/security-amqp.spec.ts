/**
 * Issue 7, points 11 and 12 for AMQP.
 *   11. A canary password (RabbitMQ users made for this spec) runs through successful connections,
 *       failed logins (wrong password, wrong vhost, both with the canary in the URL), handler errors
 *       that quote the URL, retries and dead letters: it never appears in anything logged (console
 *       spied, Courier's console logger on), an error message, stack or cause, a transport event,
 *       or a dead-letter header.
 *   12. A user without rights on a queue / on the exchange gets AccessRefusedError naming the
 *       resource and the user; the connection survives where RabbitMQ allows it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { amqpTransport } from '../../adapters/amqp';
import { AccessRefusedError, ConnectionError, consoleLogger, CourierError, Delivery, Headers } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { rabbitmqctl, urlAs } from '../adapters/amqp/amqp-fixture';
import { amqpBus, bounded, CaseBus, counterClass, tickClass, deleteListedQueues } from './amqp-harness';
import { Ledger } from './ledger';

const CANARY = `cAnArY${randomBytes(6).toString('hex')}`;
const METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;

describe('reliability, AMQP: secrets and permissions', function () {
  this.timeout(60_000);
  const seen: string[] = []; // everything that must not contain the canary
  const originals = new Map<string, (...a: unknown[]) => void>();
  const users: string[] = [];
  const buses: CaseBus[] = [];
  const groups: string[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  /** Records an error with everything a user could print of it: message, stack, causes, inspect(). */
  function record(value: unknown): void {
    seen.push(typeof value === 'string' ? value : inspect(value, { depth: 6 }));
    let e: unknown = value;
    for (let i = 0; e instanceof Error && i < 6; i++, e = (e as Error & { cause?: unknown }).cause) {
      seen.push(e.message, String(e.stack));
    }
  }

  async function user(name: string, perms: [configure: string, write: string, read: string]): Promise<string> {
    await rabbitmqctl(['add_user', name, CANARY]);
    users.push(name);
    await rabbitmqctl(['set_permissions', '-p', '/', name, ...perms]);
    return urlAs(name, CANARY);
  }

  before(() => {
    for (const m of METHODS) {
      const original = console[m].bind(console) as (...a: unknown[]) => void;
      originals.set(m, original);
      (console as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => {
        for (const a of args) seen.push(typeof a === 'string' ? a : inspect(a, { depth: 6 }));
        original(...args);
      };
    }
  });

  after(async function () {
    this.timeout(30_000);
    for (const [m, f] of originals) (console as unknown as Record<string, unknown>)[m] = f;
    await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    for (const c of closers) await c().catch(() => undefined);
    for (const u of users) await rabbitmqctl(['delete_user', u]).catch(() => undefined);
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  it('a canary password never appears in logs, errors, events or dead-letter headers, failed logins included', async () => {
    const full = uniq('courier_canary_');
    const url = await user(full, ['.*', '.*', '.*']);
    assert.ok(url.includes(CANARY));

    // Failed logins with the canary in the URL: a wrong password, a vhost that does not exist.
    const wrongPassword = new URL(url);
    wrongPassword.password = `${CANARY}x`;
    const wrongVhost = new URL(url);
    wrongVhost.pathname = `/${uniq('novhost')}`;
    for (const bad of [wrongPassword.toString(), wrongVhost.toString()]) {
      const t = amqpTransport({ url: bad, connectAttempts: 2, reconnect: { initialDelayMs: 10 } });
      t.on('error', record).on('connected', record).on('disconnected', record);
      const err = await t.connect().then(
        () => assert.fail('the login should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ConnectionError, String(err));
      record(err);
      console.log(`      failed login: ${(err as Error).message}`);
      await t.close({ timeoutMs: 500 });
    }

    // A working connection: a handler whose error quotes the URL, retried, then dead-lettered.
    const type = uniq('rel.canary.');
    const group = uniq('relcanary');
    groups.push(group);
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: canary password (logins, retries, dead letters)');
    const consumer = amqpBus(url, { bus: { logger: consoleLogger } });
    buses.push(consumer);
    consumer.transport.on('error', record).on('connected', record).on('disconnected', record);
    consumer.bus.on('deadLetter', record);
    consumer.bus.register(
      new (counterClass(Tick, ledger, {
        group,
        retry: { attempts: 2, initialDelayMs: 10 },
        work: (t) => {
          if (t.n % 2 === 1) throw new Error(`cannot reach ${url} (n=${t.n})`);
        },
      }))(),
    );
    await consumer.bus.start();
    const publisher = amqpBus(url, { ledger: undefined });
    buses.push(publisher);
    await publisher.bus.start();
    for (let i = 0; i < 20; i++) await publisher.bus.publish(Tick, { n: i });
    const dead: Delivery[] = [];
    const reader = amqpTransport({ url });
    closers.push(() => reader.close({ timeoutMs: 1000 }));
    await reader.subscribeDeadLetters({ pattern: type, group, name: 'Counter.onTick', prefetch: 50 }, async (d) => {
      dead.push(d);
      await d.ack();
    });
    await reader.connect();
    await waitFor(() => dead.length === 10 && ledger.figures().received === 10, 15_000, '10 handled, 10 dead letters');
    for (const d of dead) {
      seen.push(JSON.stringify(d.headers));
      assert.match(d.headers[Headers.deadMessage], /cannot reach amqp:\/\/courier_canary_[^:]+:\*\*\*@/);
    }
    console.log(`      dead-letter message: ${dead[0].headers[Headers.deadMessage]}`);

    const leaks = seen.filter((s) => s.includes(CANARY));
    console.log(`      canary checked in ${seen.length} logged lines, error texts, events and headers: ${leaks.length} leaks`);
    assert.deepEqual(leaks, []);
  });

  it('no rights on a queue or on the exchange: AccessRefusedError naming resource and user; the connection survives', async () => {
    const { url: guestUrl } = await amqpBroker();
    const group = uniq('relperm');
    groups.push(group);
    const type = uniq('rel.perm.');
    const Tick = tickClass(type);

    // (a) May use the exchange, may not declare queues: the subscriber's start is refused.
    const noQueues = uniq('courier_noqueue_');
    const noQueuesUrl = await user(noQueues, ['^courier\\.events$', '.*', '.*']);
    const refused = amqpBus(noQueuesUrl);
    buses.push(refused);
    refused.bus.register(new (counterClass(Tick, undefined, { group }))());
    const err = await bounded(refused.bus.start(), 15_000, 'the refused start').then(
      () => assert.fail('start should be refused'),
      (e: unknown) => e,
    );
    record(err);
    assert.ok(err instanceof AccessRefusedError, String(err));
    assert.equal(err.user, noQueues);
    assert.match(String(err.resource), new RegExp(`queue '${group}\\.Counter\\.onTick(\\.dead)?'`));
    console.log(`      ${err.name}: ${err.message}`);

    // (b) May consume its own queues, may not publish to the exchange: the publish is refused,
    //     the same connection goes on consuming.
    const noPublish = uniq('courier_nopublish_');
    // (Its queues dead-letter through the default exchange, which needs write on amq.default.)
    const noPublishUrl = await user(noPublish, [`^(courier\\.events|${group}\\..*)$`, `^(amq\\.default|${group}\\..*)$`, '.*']);
    const ledger = new Ledger('amqp: permissions (refused publish, connection survives)');
    const limited = amqpBus(noPublishUrl);
    buses.push(limited);
    let disconnects = 0;
    limited.transport.on('disconnected', () => disconnects++);
    limited.bus.register(new (counterClass(Tick, ledger, { group: `${group}` }))());
    await limited.bus.start();
    const refusals: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await limited.bus.publish(Tick, { n: i }).then(
        () => assert.fail('the publish should be refused'),
        (e: unknown) => refusals.push(e),
      );
    }
    for (const r of refusals) {
      record(r);
      assert.ok(r instanceof AccessRefusedError, String(r));
      assert.equal(r.user, noPublish);
      assert.match(String(r.resource), /exchange 'courier\.events'/);
      assert.ok(r instanceof CourierError);
    }
    console.log(`      ${(refusals[0] as Error).name}: ${(refusals[0] as Error).message}`);
    // Someone allowed to publish does; the limited bus's subscription, on the same connection, gets it all.
    const guest = amqpBus(guestUrl, { ledger });
    buses.push(guest);
    await guest.bus.start();
    await Promise.all(Array.from({ length: 500 }, (_, i) => guest.bus.publish(Tick, { n: i })));
    await waitFor(() => ledger.complete, 10_000, 'the limited consumer to get every message');
    await sleep(100);
    const f = ledger.report();
    assert.equal(f.lost, 0);
    assert.equal(disconnects, 0, 'the connection survived the refusals');
    assert.deepEqual(seen.filter((s) => s.includes(CANARY)), []);
  });
});

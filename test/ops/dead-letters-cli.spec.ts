/**
 * `courier dead-letters list|show|replay|purge`, run as a command against the real brokers, on
 * the dead letters a running service made; and a replay SIGKILLed midway, every id counted.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Bus, createBus, DeadLetterEvent, silentLogger } from '../../lib';
import { publishEnvelope } from '../../lib/ops';
import { courier, jsonLines, start } from './cli';
import { Broker, Item, Kit, makeKit, service } from './kits';
import { waitFor, sleep } from '../helpers/wait';

const HANDLER = ['--handler', 'Service.on'];

/** A running service whose handler dead-letters `rejected` items and `invalid` payloads. */
async function running(kit: Kit) {
  const svc = service(kit.group);
  const bus: Bus = createBus({ transport: kit.transport(), source: 'ops-test', logger: silentLogger });
  const dead: DeadLetterEvent[] = [];
  bus.on('deadLetter', (e: DeadLetterEvent) => dead.push(e));
  bus.register(svc);
  await bus.start();
  return { svc, bus, dead };
}

for (const broker of ['amqp', 'mqtt'] as Broker[]) {
  describe(`courier dead-letters on ${broker}`, function () {
    this.timeout(120_000);
    let kit: Kit;
    beforeEach(async () => (kit = await makeKit(broker)));
    afterEach(async () => kit.cleanup());

    it('lists, filters, shows, replays (attempt 1, courierreplayed) and purges the dead letters of one subscription', async () => {
      const { svc, bus, dead } = await running(kit);
      const sub = ['--group', kit.group, ...HANDLER, ...kit.cli];
      try {
        const ids: string[] = [];
        for (let i = 0; i < 12; i++) ids.push(await bus.publish(Item, { n: `r${i}` }));
        // Invalid payloads (n is not a string), as a foreign publisher might send them.
        const t = kit.transport();
        await t.connect();
        const invalid: string[] = [];
        for (let i = 0; i < 5; i++) invalid.push(await publishEnvelope(t, 'ops.item', { n: i }, { source: 'foreign' }));
        await t.close();
        await waitFor(() => dead.length === 17, 20_000, '17 dead letters');

        const listed = await courier(['dead-letters', 'list', ...sub, '--json']);
        assert.equal(listed.code, 0, listed.stderr);
        const all = jsonLines<{ id: string; reason: string; attempt: number; type: string; subscription: string }>(listed);
        assert.deepEqual(all.map((d) => d.id).sort(), [...ids, ...invalid].sort(), 'every dead letter listed once');
        assert.equal(all.filter((d) => d.reason === 'rejected').length, 12);
        assert.equal(all.filter((d) => d.reason === 'invalid').length, 5);
        assert.ok(all.every((d) => d.type === 'ops.item' && d.subscription === `${kit.group}/Service.on`));

        // Listing removed nothing; --where selects by reason.
        const onlyInvalid = jsonLines<{ id: string }>(await courier(['dead-letters', 'list', ...sub, '--json', '--where', 'reason=invalid']));
        assert.deepEqual(onlyInvalid.map((d) => d.id).sort(), [...invalid].sort());
        const none = jsonLines(await courier(['dead-letters', 'list', ...sub, '--json', '--where', 'type=other.*']));
        assert.equal(none.length, 0);

        const shown = await courier(['dead-letters', 'show', invalid[0], ...sub, '--json']);
        assert.equal(shown.code, 0, shown.stderr);
        const one = jsonLines<{ id: string; reason: string; error: string; body: unknown; headers: Record<string, string> }>(shown)[0];
        assert.equal(one.id, invalid[0]);
        assert.equal(one.reason, 'invalid');
        assert.equal(one.error, 'PayloadValidationError');
        assert.deepEqual(one.body, { n: 0 });
        assert.equal(one.headers.source, 'foreign');
        const missing = await courier(['dead-letters', 'show', 'no-such-id', ...sub]);
        assert.equal(missing.code, 1);

        // Fixed: replay the rejected ones only.
        svc.fixed = true;
        const replay = await courier(['dead-letters', 'replay', ...sub, '--where', 'reason=rejected', '--json']);
        assert.equal(replay.code, 0, replay.stderr);
        const summary = jsonLines<{ replayed?: number; examined?: number }>(replay).at(-1)!;
        assert.equal(summary.replayed, 12);
        await waitFor(() => svc.handled.length >= 12, 20_000, '12 replayed messages handled');
        await sleep(300);
        assert.deepEqual(svc.handled.map((h) => h.id).sort(), [...ids].sort(), 'each replayed message handled once, same id');
        assert.ok(svc.handled.every((h) => h.attempt === 1 && typeof h.replayed === 'string' && !Number.isNaN(Date.parse(h.replayed))), JSON.stringify(svc.handled[0]));

        const left = jsonLines<{ id: string; reason: string }>(await courier(['dead-letters', 'list', ...sub, '--json']));
        assert.deepEqual(left.map((d) => d.id).sort(), [...invalid].sort(), 'only the invalid ones are left');

        const noYes = await courier(['dead-letters', 'purge', ...sub]);
        assert.equal(noYes.code, 2, 'purge without --yes is bad usage');
        const purge = await courier(['dead-letters', 'purge', ...sub, '--where', 'reason=invalid', '--yes', '--json']);
        assert.equal(purge.code, 0, purge.stderr);
        assert.equal(jsonLines<{ purged: number }>(purge)[0].purged, 5);
        assert.equal(jsonLines(await courier(['dead-letters', 'list', ...sub, '--json', '--wait-ms', '1000'])).length, 0);
      } finally {
        await bus.stop();
      }
    });

    it('a replay SIGKILLed midway loses no message (every id counted); the negative control, removing first, does', async () => {
      const N = 150;
      const { svc, bus, dead } = await running(kit);
      const sub = ['--group', kit.group, ...HANDLER, ...kit.cli];
      try {
        const ids: string[] = [];
        for (let i = 0; i < N; i++) ids.push(await bus.publish(Item, { n: String(i) }));
        await waitFor(() => dead.length === N, 30_000, `${N} dead letters`);
        svc.fixed = true;

        // Safe replay, paced at 100/s, killed once 40 copies reached the handler.
        const cut = async (run: ReturnType<typeof start>) => {
          await waitFor(() => svc.handled.length >= 40 || run.proc.exitCode !== null, 30_000, '40 replayed');
          run.proc.kill('SIGKILL');
          const r = await run.exit;
          assert.equal(r.signal, 'SIGKILL', `killed midway: ${r.stderr}`);
        };
        await cut(start(['dead-letters', 'replay', ...sub, '--rate', '100', '--json']));
        const handledBeforeRerun = svc.handled.length;
        assert.ok(handledBeforeRerun < N, `cut before the end: ${handledBeforeRerun}`);
        const rest = await courier(['dead-letters', 'replay', ...sub, '--json']);
        assert.equal(rest.code, 0, rest.stderr);
        await waitFor(() => new Set(svc.handled.map((h) => h.id)).size === N, 30_000, 'every id handled');
        await sleep(500);
        const seen = new Map<string, number>();
        for (const h of svc.handled) seen.set(h.id, (seen.get(h.id) ?? 0) + 1);
        const lost = ids.filter((id) => !seen.has(id));
        const duplicates = svc.handled.length - seen.size;
        const unexpected = [...seen.keys()].filter((id) => !ids.includes(id));
        console.log(`      ${broker} replay killed after ${handledBeforeRerun} of ${N}: lost ${lost.length}, duplicates ${duplicates}, unexpected ${unexpected.length}`);
        assert.deepEqual(lost, []);
        assert.deepEqual(unexpected, []);
        assert.ok(duplicates <= 16, `at most the copies in flight at the kill are duplicated: ${duplicates}`);
        assert.equal(jsonLines(await courier(['dead-letters', 'list', ...sub, '--json', '--wait-ms', '1000'])).length, 0, 'no dead letter left');

        // Negative control: the same kill with the dead letter removed before its copy is sent.
        svc.fixed = false;
        svc.handled.length = 0;
        const dead2 = dead.length;
        const ids2: string[] = [];
        for (let i = 0; i < N; i++) ids2.push(await bus.publish(Item, { n: `u${i}` }));
        await waitFor(() => dead.length === dead2 + N, 30_000, `${N} more dead letters`);
        svc.fixed = true;
        const unsafe = start([JSON.stringify(kit.cli), kit.group, 'Service.on'], { script: path.join(__dirname, 'fixtures', 'unsafe-replay.js') });
        await cut(unsafe);
        const rest2 = await courier(['dead-letters', 'replay', ...sub, '--json']);
        assert.equal(rest2.code, 0, rest2.stderr);
        await sleep(2000);
        const seen2 = new Set(svc.handled.map((h) => h.id));
        const lost2 = ids2.filter((id) => !seen2.has(id));
        console.log(`      ${broker} negative control (remove first) killed: lost ${lost2.length}`);
        assert.ok(lost2.length > 0, 'removing the dead letter before its copy is confirmed loses the messages in between');
      } finally {
        await bus.stop();
      }
    });
  });
}

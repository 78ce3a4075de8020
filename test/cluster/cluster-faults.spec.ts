/**
 * Issue 21, points 1 and 3: Courier on a three-node RabbitMQ cluster (test/helpers/rabbit-cluster.ts)
 * with quorum queues, through faults while a stream of events flows:
 *   - the node that leads the group's queue SIGKILLed, three times in a run (started again each time);
 *   - that node cut off from the other two (a network partition), then healed;
 *   - a rolling restart of all three nodes;
 * each time 0 confirmed messages lost, 0 unexpected, the consumer resuming by itself (messages
 * handled after the fault by the same bus, never restarted), the publish stall reported (the
 * longest gap between two confirms). Negative control: the same kill with a classic queue on the
 * killed node loses and strands its messages.
 *
 * Both buses get every node's URL (the transport moves on to the next after a loss) and a 2 s
 * heartbeat: a node cut off the network sends no RST, and the heartbeat is what notices it.
 * Registration as in test/containers/container-faults.spec.ts: CI (COURIER_REQUIRE_CONTAINERS)
 * fails without an engine; a developer without one gets a console line, not a green "pending".
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import amqplib from 'amqplib';
import { containerEngineSync, containersRequired } from '../helpers/brokers';
import { rabbitCluster, type RabbitCluster } from '../helpers/rabbit-cluster';
import { sleep, uniq } from '../helpers/wait';
import { amqpBus, bounded, CaseBus, COUNTER_HANDLER, counterClass, tickClass } from '../reliability/amqp-harness';
import { Ledger, LedgerFigures } from '../reliability/ledger';

const engine = containerEngineSync();

/** One publish every PUBLISH_EVERY_MS while the fault runs (about 50 a second). */
const PUBLISH_EVERY_MS = 20;

interface StreamFigures extends LedgerFigures {
  /** The longest gap between two publisher confirms during the stream. */
  readonly stallMs: number;
  /** Handled by the consumer after the fault ended. */
  readonly handledAfter: number;
  readonly consumerReconnects: number;
  readonly failedPublishes: number;
  readonly faultMs: number;
}

interface FaultContext {
  readonly cluster: RabbitCluster;
  /** The group's work queue. */
  readonly queue: string;
  readonly ledger: Ledger;
}

if (!engine.ok && containersRequired()) {
  describe('RabbitMQ cluster faults', () => {
    it('needs a Docker-compatible engine (COURIER_REQUIRE_CONTAINERS is set)', () => {
      throw new Error(`No container engine answers: ${engine.where}. Run scripts/container-engine.sh and export DOCKER_HOST.`);
    });
  });
} else if (!engine.ok) {
  console.log(`[cluster-faults] NOT REGISTERED: no Docker-compatible engine answers (${engine.where}); CI sets COURIER_REQUIRE_CONTAINERS=1 and fails instead.`);
} else {
  describe(`RabbitMQ cluster faults (3 nodes, engine ${engine.where})`, function () {
    this.timeout(300_000);
    let cluster: RabbitCluster;
    const buses: CaseBus[] = [];

    before(async function () {
      this.timeout(300_000);
      cluster = await rabbitCluster();
    });
    afterEach(async function () {
      this.timeout(60_000);
      await Promise.all(buses.splice(0).map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
      await cluster?.untilWhole(120_000);
    });

    /**
     * A consumer bus and a publisher bus on the cluster; events flow while `fault` runs and for 3 s
     * after it; then every confirmed id is counted once the consumer caught up (bounded).
     */
    async function stream(
      name: string,
      o: { queueType: 'classic' | 'quorum'; consumerFirst?: string; publisherAvoids?: string; fault: (c: FaultContext) => Promise<void>; drainMs?: number },
    ): Promise<StreamFigures> {
      const ledger = new Ledger(`cluster: ${name}`);
      const type = uniq('cl.tick.');
      const group = uniq('clgroup');
      const Tick = tickClass(type);
      const queue = `${group}.${COUNTER_HANDLER}`;
      const order = (first?: string, last?: string) => {
        const urls = cluster.nodes.filter((n) => n.name !== first && n.name !== last).map((n) => n.url);
        if (first) urls.unshift(cluster.byNode(first).url);
        if (last) urls.push(cluster.byNode(last).url);
        return urls;
      };
      const transport = { queueType: o.queueType, heartbeatSeconds: 2, publishTimeoutMs: 120_000 } as const;
      let faultEnd = Infinity;
      let handledAfter = 0;
      const consumer = amqpBus(cluster.urls[0], { transport: { ...transport, url: order(o.consumerFirst) } });
      buses.push(consumer);
      consumer.bus.register(
        new (counterClass(Tick, ledger, {
          group,
          prefetch: 20,
          work: () => {
            if (Date.now() > faultEnd) handledAfter++;
          },
        }))(),
      );
      await consumer.bus.start();
      const publisher = amqpBus(cluster.urls[0], { ledger, transport: { ...transport, url: order(undefined, o.publisherAvoids) } });
      buses.push(publisher);
      await publisher.bus.start();

      let publishing = true;
      let n = 0;
      let failedPublishes = 0;
      const failures = new Map<string, number>();
      let lastConfirm = 0;
      let stallMs = 0;
      const pending: Promise<void>[] = [];
      const pump = (async () => {
        while (publishing) {
          pending.push(
            publisher.bus.publish(Tick, { n: n++ }).then(
              () => {
                const now = Date.now();
                if (lastConfirm) stallMs = Math.max(stallMs, now - lastConfirm);
                lastConfirm = now;
              },
              (err: Error) => {
                failedPublishes++;
                const k = `${err.name}: ${err.message.slice(0, 120)}`;
                failures.set(k, (failures.get(k) ?? 0) + 1);
              },
            ),
          );
          await sleep(PUBLISH_EVERY_MS);
        }
      })();
      await sleep(2000);
      const t0 = Date.now();
      await o.fault({ cluster, queue, ledger });
      const faultMs = Date.now() - t0;
      faultEnd = Date.now();
      await sleep(3000);
      publishing = false;
      await pump;
      await bounded(Promise.all(pending), 150_000, 'every publish to settle');
      const deadline = Date.now() + (o.drainMs ?? 60_000);
      while (!ledger.complete && Date.now() < deadline) await sleep(200);
      await sleep(1000); // late duplicates
      const f = ledger.report();
      const figures: StreamFigures = { ...f, stallMs, handledAfter, consumerReconnects: consumer.reconnects(), failedPublishes, faultMs };
      console.log(
        `      [${f.case}] publish stall ${stallMs} ms, fault ${faultMs} ms, failed publishes ${failedPublishes}, ` +
          `publisher reconnects ${publisher.reconnects()}, consumer reconnects ${figures.consumerReconnects}, handled after the fault ${handledAfter}`,
      );
      for (const [k, v] of failures) console.log(`      [${f.case}] ${v} publishes failed with ${k}`);
      record(figures);
      await deleteQueues(cluster, [queue, `${queue}.dead`]);
      return figures;
    }

    function assertNothingLost(f: StreamFigures): void {
      assert.equal(f.lost, 0, 'no confirmed message lost');
      assert.equal(f.unexpected, 0, 'no unexpected message');
      assert.equal(f.failedPublishes, 0, 'no publish failed');
      assert.ok(f.confirmed > 100, `a stream flowed (${f.confirmed} confirmed)`);
      assert.ok(f.handledAfter > 0, 'the consumer resumed by itself');
    }

    it('quorum queue: its leader SIGKILLed three times mid-stream (started again each time): nothing lost, the consumer resumes', async () => {
      const killed: string[] = [];
      const figures = await stream('quorum, leader SIGKILLed 3 times', {
        queueType: 'quorum',
        fault: async ({ cluster, queue }) => {
          for (let i = 0; i < 3; i++) {
            const leader = await cluster.leaderOf(queue);
            killed.push(leader);
            const node = cluster.byNode(leader);
            await node.kill();
            await sleep(3000); // the stream goes on over the two others
            await node.start();
            await sleep(1000);
          }
        },
      });
      console.log(`      [cluster] killed in turn: ${killed.join(', ')}`);
      assertNothingLost(figures);
    });

    it('quorum queue: its leader cut off from the other nodes (partition, pause_minority), then healed: nothing lost, the consumer resumes', async () => {
      let cut = '';
      const figures = await stream('quorum, leader partitioned 15 s', {
        queueType: 'quorum',
        fault: async ({ cluster, queue }) => {
          cut = await cluster.leaderOf(queue);
          const node = cluster.byNode(cut);
          await node.partition();
          await sleep(15_000);
          const newLeader = await cluster.leaderOf(queue, [cut]).catch(() => '?');
          console.log(`      [cluster] ${cut} cut off; leader during the cut: ${newLeader}`);
          await node.heal();
          await cluster.untilWhole(120_000);
        },
      });
      assertNothingLost(figures);
    });

    it('quorum queue: a rolling restart of all three nodes: nothing lost, the consumer resumes', async function () {
      this.timeout(480_000); // three stops and starts, each start allowed one retry (rabbit-cluster.ts)
      const figures = await stream('quorum, rolling restart', {
        queueType: 'quorum',
        fault: async ({ cluster }) => {
          for (const node of cluster.nodes) {
            await node.stop();
            await node.start();
            await sleep(1000);
          }
        },
      });
      assertNothingLost(figures);
    });

    it('negative control: a classic queue on the SIGKILLed node strands its messages, and those published meanwhile are lost', async () => {
      const home = cluster.nodes[2];
      let missingWhileDown = 0;
      let confirmedWhileDown = 0;
      const figures = await stream('classic, its node SIGKILLed (negative control)', {
        queueType: 'classic',
        consumerFirst: home.name, // a classic queue lives on the node it was declared on
        publisherAvoids: home.name,
        drainMs: 30_000,
        fault: async ({ cluster, queue, ledger }) => {
          assert.equal(await cluster.homeOf(queue), home.node, `the classic queue lives on ${home.node}`);
          await home.kill();
          await sleep(10_000);
          const f = ledger.figures();
          missingWhileDown = ledger.lostIds.length;
          confirmedWhileDown = f.confirmed;
          await home.start();
        },
      });
      console.log(
        `      [cluster] classic queue on ${home.node}: while it was down ${missingWhileDown} of ${confirmedWhileDown} confirmed not delivered (stranded or dropped); ` +
          `after it came back ${figures.lost} of ${figures.confirmed} never delivered (lost)`,
      );
      assert.ok(missingWhileDown > 0, 'while its node is down, a classic queue delivers nothing: the checker must see it');
      assert.ok(figures.lost > 0, 'the kill must lose confirmed messages of a classic queue, or this control proves nothing');
    });
  });
}

/** Deletes queues through any node that answers. */
async function deleteQueues(cluster: RabbitCluster, queues: string[]): Promise<void> {
  for (const url of cluster.urls) {
    let conn: amqplib.ChannelModel | undefined;
    try {
      conn = await amqplib.connect(url);
      conn.on('error', () => undefined);
      for (const q of queues) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await ch.deleteQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
      return;
    } catch {
      // the next node
    } finally {
      await conn?.close().catch(() => undefined);
    }
  }
}

/** Appends the figures to .tmp/cluster.jsonl (for docs/reliability.md). */
function record(f: StreamFigures): void {
  const dir = path.join(__dirname, '..', '..', '.tmp');
  fs.mkdirSync(dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'cluster.jsonl'), JSON.stringify({ at: new Date().toISOString(), ...f }) + '\n');
}

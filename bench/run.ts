/**
 * `npm run bench [-- --smoke] [--json] [--json-out FILE] [--case a,b] [--rounds N] [--cpu-prof DIR] [--raw-keeps-unconfirmed] [--raw-envelope] [--raw-persistent-requests]`
 *
 * Each case runs for Courier and for the raw client doing the same work on the same broker, the
 * producer and the consumer in separate child processes (bench/child.ts), Courier and raw
 * alternating round by round; the table shows medians over the rounds and the peak RSS of each
 * side. Method and latest numbers: docs/benchmarks.md. Speed is never asserted: the process exits
 * 0 when every case produced numbers, whatever the ratios.
 *
 * Brokers: COURIER_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672); for MQTT a Mosquitto of
 * our own that does not drop (test/helpers/own-mosquitto.ts), or COURIER_BENCH_MQTT_URL to use another.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import amqplib from 'amqplib';
import { buildChildren } from './build';
import { OwnMosquitto } from '../test/helpers/own-mosquitto';
import { Child, ChildResult, withTimeout } from './processes';
import { median } from './window';
import { renderTable, Row, Side } from './report';
import { outboxCase } from './outbox-cases';
import { brokerCpuDelta, brokerCpuMs } from './broker-cpu';
import { serviceCase } from './service-cases';
import { queueTypeCase } from './queue-type-cases';
import { partitionCase, partitionCaseResources } from './partition-cases';

interface Options {
  readonly smoke: boolean;
  readonly json: boolean;
  readonly only?: string[];
  readonly rounds: number;
  readonly cpuProf?: string;
  /** Also write the JSON report to this file. */
  readonly jsonOut?: string;
  /**
   * The raw AMQP producer keeps each message until its confirm, as it must to publish it again
   * after a reconnect (Courier does): a diagnostic of what that costs in memory, not the default.
   */
  readonly rawKeepsUnconfirmed: boolean;
  /**
   * The raw AMQP sides of a and b put Courier's envelope on the wire (its properties and its
   * `cloudEvents_` headers table, built by hand): what the broker and amqplib spend on the bigger
   * message, apart from Courier's own CPU. A diagnostic, not the default.
   */
  readonly rawEnvelope: boolean;
  /**
   * The like-for-like raw requests of b are persistent (Courier's default before issue 19): what
   * persisting a request costs the broker. A diagnostic, not the default.
   */
  readonly rawPersistentRequests: boolean;
}

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const smoke = argv.includes('--smoke');
  const rounds = Number(get('--rounds') ?? (smoke ? 1 : 3));
  return {
    smoke,
    json: argv.includes('--json'),
    only: get('--case')?.split(','),
    rounds,
    cpuProf: get('--cpu-prof'),
    jsonOut: get('--json-out'),
    rawKeepsUnconfirmed: argv.includes('--raw-keeps-unconfirmed'),
    rawEnvelope: argv.includes('--raw-envelope'),
    rawPersistentRequests: argv.includes('--raw-persistent-requests'),
  };
}

const FULL = { events: 50_000, rpc1: 4_000, rpc100: 30_000, mqtt: 50_000, memEvents: 100_000, memRpc: 50_000, bulk: [25_000, 100_000], outbox: 10_000, service: 20_000, partitioned: 10_000 };
const SMOKE = { events: 2_000, rpc1: 200, rpc100: 2_000, mqtt: 2_000, memEvents: 5_000, memRpc: 2_000, bulk: [1_000, 4_000], outbox: 500, service: 500, partitioned: 500 };
const WINDOW = 1000;
const PREFETCH = 1000;
/** Case e: a slow consumer, 5 ms per message, 10 at a time (at most ~2,000 messages/s). */
const SLOW = { prefetch: 10, delayMs: 5 };

type Sizes = typeof FULL;

interface Ctx {
  readonly o: Options;
  readonly sizes: Sizes;
  readonly amqpUrl: string;
  /** The Mosquitto of each MQTT broker kind (see MqttBroker). */
  readonly mqttUrls: Partial<Record<MqttBroker, string>>;
  readonly runId: string;
  /** The transpiled child entry (bench/build.ts). */
  readonly entry: string;
  readonly log: (line: string) => void;
}

/** Courier, the like-for-like raw client, and the plain raw client a user would write. */
type SideName = 'courier' | 'raw' | 'plain';

/** One measurement of one side in one round. */
interface Sample {
  rate: number;
  p50?: number;
  p99?: number;
  rssMb: number;
  detail: Record<string, number>;
}

interface CaseDef {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly raw: boolean;
  /** Also measured against the plain raw client a user would write (issue 19: bench/roles/plain-*.ts). */
  readonly plain?: boolean;
  /** The Mosquitto an MQTT case runs against. */
  readonly mqttBroker?: MqttBroker;
  /** Reports RabbitMQ's CPU per 1,000 messages (bench/broker-cpu.ts); the sample's detail holds `count`. */
  readonly brokerCpu?: boolean;
  /** Rounds it runs (the back-pressure case runs once: it compares sizes, not sides). */
  rounds?(ctx: Ctx): number;
  run(ctx: Ctx, side: SideName, tag: string): Promise<Sample>;
}

async function runPair(ctx: Ctx, consumer: [string, object], producer: [string, object], openEnded: boolean) {
  const timeoutMs = ctx.o.smoke ? 60_000 : 600_000;
  const c = new Child(ctx.entry, consumer[0], consumer[1], ctx.o.cpuProf);
  const p = new Child(ctx.entry, producer[0], producer[1], ctx.o.cpuProf);
  try {
    await withTimeout(Promise.all([c.ready, p.ready]), 60_000, `${consumer[0]} + ${producer[0]} start`);
    p.send('go');
    const pr = await withTimeout(p.result, timeoutMs, producer[0]);
    if (openEnded) c.send('stop');
    const cr = await withTimeout(c.result, timeoutMs, consumer[0]);
    return { consumer: cr, producer: pr };
  } finally {
    await Promise.all([c.end(), p.end()]);
  }
}

async function runSingle(ctx: Ctx, role: string, params: object): Promise<ChildResult> {
  const c = new Child(ctx.entry, role, params, ctx.o.cpuProf);
  try {
    await withTimeout(c.ready, 60_000, `${role} start`);
    c.send('go');
    return await withTimeout(c.result, ctx.o.smoke ? 60_000 : 600_000, role);
  } finally {
    await c.end();
  }
}

/** Deletes what a pair declared on RabbitMQ (queues are unique per run and side). */
async function cleanAmqp(url: string, queues: string[], exchanges: string[]): Promise<void> {
  const conn = await amqplib.connect(url);
  try {
    for (const [kind, name] of [...queues.map((q) => ['q', q]), ...exchanges.map((e) => ['e', e])]) {
      // A channel per deletion: a refusal closes the channel it happened on.
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await (kind === 'q' ? ch.deleteQueue(name) : ch.deleteExchange(name)).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

const rate = (count: number, first: number, last: number) => (count * 1000) / Math.max(1e-3, last - first);
const rssOf = (...r: ChildResult[]) => Math.max(...r.map((x) => x.peakRssMb));

/** A side's role for a kind of work: `courier-<kind>`, else `<side>-<transport>-<kind>`. */
const roleOf = (side: SideName, transport: 'amqp' | 'mqtt', kind: string) => (side === 'courier' ? `courier-${kind}` : `${side}-${transport}-${kind}`);

/**
 * The Mosquittos of the MQTT cases (bench/run.ts starts each on a free port unless
 * COURIER_BENCH_MQTT_URL names one for both). `recommended`: what docs/brokers.md tells users to
 * set for throughput (adapters/mqtt/mosquitto.conf: persistence, no count limit on queues,
 * max_inflight_messages MQTT_INFLIGHT) with the periodic save (every second): the durable save
 * after every change holds every client, raw ones too, to ~1,300 msg/s (docs/brokers.md), so the
 * case would measure the broker's disk writes and nothing of the client. `held`: Mosquitto's default window of 20 (which it
 * announces to MQTT 5 clients as their Receive Maximum) with no queue limit, so nothing is dropped
 * and every message can be counted; there the raw publishers are held to the same 20 in flight
 * as Courier's.
 */
type MqttBroker = 'recommended' | 'held';
/** max_inflight_messages of the recommended Mosquitto (docs/brokers.md). */
const MQTT_INFLIGHT = 1000;
/** Mosquitto's default max_inflight_messages. */
const MOSQUITTO_DEFAULT_INFLIGHT = 20;

function eventsCase(id: string, title: string, transport: 'amqp' | 'mqtt', mqttBroker: MqttBroker = 'recommended'): CaseDef {
  return {
    id,
    title,
    unit: 'msg/s',
    raw: true,
    plain: true,
    brokerCpu: transport === 'amqp',
    mqttBroker: transport === 'mqtt' ? mqttBroker : undefined,
    async run(ctx, side, tag) {
      const n = transport === 'amqp' ? ctx.sizes.events : ctx.sizes.mqtt;
      const base = { n, window: WINDOW, prefetch: PREFETCH };
      let consumer: [string, object];
      let producer: [string, object];
      if (transport === 'amqp') {
        const common = { ...base, url: ctx.amqpUrl, exchange: tag, queue: `${tag}.raw`, routingKey: 'bench.event', source: tag, transport, keepUnconfirmed: ctx.o.rawKeepsUnconfirmed, envelope: ctx.o.rawEnvelope };
        consumer = [roleOf(side, 'amqp', 'consumer'), common];
        producer = [roleOf(side, 'amqp', 'producer'), common];
      } else {
        // Held: the raw publishers keep no more in flight than Courier's, which honours the broker's Receive Maximum.
        const window = mqttBroker === 'held' && side !== 'courier' ? MOSQUITTO_DEFAULT_INFLIGHT : WINDOW;
        const common = { ...base, window, url: ctx.mqttUrls[mqttBroker], prefix: tag, clientId: tag, source: tag, group: tag, topic: `${tag}/bench/event`, transport };
        consumer = [roleOf(side, 'mqtt', 'consumer'), common];
        producer = [roleOf(side, 'mqtt', 'producer'), common];
      }
      try {
        const r = await runPair(ctx, consumer, producer, false);
        return {
          rate: rate(r.consumer.count, r.producer.first, r.consumer.last),
          rssMb: rssOf(r.consumer, r.producer),
          detail: {
            consumerRssMb: r.consumer.peakRssMb, producerRssMb: r.producer.peakRssMb, count: r.consumer.count,
            producerCpuUs: (r.producer.cpuMs * 1000) / n, consumerCpuUs: (r.consumer.cpuMs * 1000) / Math.max(1, r.consumer.count),
          },
        };
      } finally {
        if (transport === 'amqp') await cleanAmqp(ctx.amqpUrl, [`${tag}.raw`, `${tag}.EventSink.handle`, `${tag}.EventSink.handle.dead`], [tag]);
      }
    },
  };
}

function rpcCase(inflight: 1 | 100): CaseDef {
  return {
    id: `b${inflight}`,
    title: `b AMQP request/reply, ${inflight} in flight`,
    unit: 'req/s',
    raw: true,
    plain: true,
    brokerCpu: true,
    async run(ctx, side, tag) {
      const n = inflight === 1 ? ctx.sizes.rpc1 : ctx.sizes.rpc100;
      const common = {
        url: ctx.amqpUrl, exchange: tag, queue: `${tag}.raw`, routingKey: 'bench.request', source: tag, transport: 'amqp',
        n, inflight, warmup: Math.min(500, Math.ceil(n / 10)), prefetch: 100, envelope: ctx.o.rawEnvelope, persistentRequests: ctx.o.rawPersistentRequests,
      };
      const server = roleOf(side, 'amqp', 'rpc-server');
      const client = roleOf(side, 'amqp', 'rpc-client');
      try {
        const r = await runPair(ctx, [server, common], [client, common], true);
        const c = r.producer;
        return {
          rate: rate(c.count, c.first, c.last),
          p50: c.p50,
          p99: c.p99,
          rssMb: rssOf(r.consumer, r.producer),
          detail: {
            serverRssMb: r.consumer.peakRssMb, clientRssMb: r.producer.peakRssMb, count: c.count,
            // Per request over the whole run (the warm-up's requests included: count is after it).
            clientCpuUs: (r.producer.cpuMs * 1000) / n, serverCpuUs: (r.consumer.cpuMs * 1000) / n,
          },
        };
      } finally {
        await cleanAmqp(ctx.amqpUrl, [`${tag}.raw`, `${tag}.RpcServer.handle`, `${tag}.RpcServer.handle.dead`], [tag]);
      }
    },
  };
}

function memoryCase(kind: 'events' | 'rpc'): CaseDef {
  return {
    id: `d-${kind}`,
    title: kind === 'events' ? 'd memory transport, events' : 'd memory transport, request/reply 100 in flight',
    unit: kind === 'events' ? 'msg/s' : 'req/s',
    raw: false,
    async run(ctx, _side, tag) {
      const n = kind === 'events' ? ctx.sizes.memEvents : ctx.sizes.memRpc;
      const params = { transport: 'memory', source: tag, n, window: WINDOW, prefetch: PREFETCH, inflight: 100, warmup: Math.min(500, n / 10) };
      const r = await runSingle(ctx, kind === 'events' ? 'courier-memory-events' : 'courier-memory-rpc', params);
      return { rate: rate(r.count, r.first, r.last), p50: r.p50, p99: r.p99, rssMb: r.peakRssMb, detail: { cpuUs: (r.cpuMs * 1000) / n } };
    },
  };
}

/**
 * Cases h: what tracing costs per message on the memory transport (no broker to hide it): the
 * bus with `tracing: openTelemetry()` against the same bus without tracing (the "raw" column).
 * `h-otel-off`: no SDK registered (no span is made); `h-otel-on`: the SDK records every span.
 */
function tracingCase(mode: 'off' | 'on'): CaseDef {
  return {
    id: `h-otel-${mode}`,
    title: mode === 'off' ? 'h memory events, openTelemetry() with no SDK (raw = no tracing)' : 'h memory events, openTelemetry() with the SDK recording (raw = no tracing)',
    unit: 'msg/s',
    raw: true,
    async run(ctx, side, tag) {
      const n = ctx.sizes.memEvents;
      const params = { transport: 'memory', source: tag, n, window: WINDOW, prefetch: PREFETCH, warmup: Math.min(500, n / 10), tracing: side === 'raw' ? undefined : mode === 'off' ? 'api' : 'sdk' };
      const r = await runSingle(ctx, 'courier-memory-events', params);
      return { rate: rate(r.count, r.first, r.last), p50: r.p50, p99: r.p99, rssMb: r.peakRssMb, detail: {} };
    },
  };
}

const backPressure: CaseDef = {
  id: 'e',
  title: 'e back-pressure, 16 KiB into a slow consumer',
  unit: 'msg/s',
  raw: true,
  rounds: () => 1,
  async run(ctx, side, tag) {
    const detail: Record<string, number> = {};
    let published = 0;
    let seconds = 0;
    for (const n of ctx.sizes.bulk) {
      const t = `${tag}-${n}`;
      const common = {
        url: ctx.amqpUrl, exchange: t, queue: `${t}.raw`, routingKey: 'bench.bulk', source: t, transport: 'amqp',
        n, window: WINDOW, bulk: true, openEnded: true, ...SLOW,
      };
      const consumer = side === 'courier' ? 'courier-consumer' : 'raw-amqp-consumer';
      const producer = side === 'courier' ? 'courier-producer' : 'raw-amqp-producer';
      try {
        const r = await runPair(ctx, [consumer, common], [producer, common], true);
        detail[`producerRssMb@${n}`] = r.producer.peakRssMb;
        detail[`consumerRssMb@${n}`] = r.consumer.peakRssMb;
        detail[`consumed@${n}`] = r.consumer.count;
        published = n;
        seconds = (r.producer.last - r.producer.first) / 1000;
      } finally {
        await cleanAmqp(ctx.amqpUrl, [`${t}.raw`, `${t}.EventSink.handle`, `${t}.EventSink.handle.dead`], [t]);
      }
    }
    const [small, large] = ctx.sizes.bulk;
    return {
      rate: published / seconds,
      rssMb: Math.max(detail[`producerRssMb@${large}`], detail[`consumerRssMb@${large}`]),
      detail: {
        ...detail,
        producerGrowth: detail[`producerRssMb@${large}`] / detail[`producerRssMb@${small}`],
        consumerGrowth: detail[`consumerRssMb@${large}`] / detail[`consumerRssMb@${small}`],
      },
    };
  },
};

/** Cases f (bench/outbox-cases.ts): outbox publish on each database against a plain bus.publish. */
function outboxCaseDef(kind: 'plain' | 'postgres' | 'sqlite'): CaseDef {
  const titles = {
    plain: 'f AMQP plain bus.publish, 10 in flight (baseline of f)',
    postgres: 'f outbox on PostgreSQL, 10 transactions at once',
    sqlite: 'f outbox on SQLite (file, WAL)',
  };
  return {
    id: `f-${kind}`,
    title: titles[kind],
    unit: 'msg/s',
    raw: false,
    async run(ctx, _side, tag) {
      const pgUrl = process.env.COURIER_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
      try {
        return await outboxCase(kind, { amqpUrl: ctx.amqpUrl, pgUrl, n: ctx.sizes.outbox, window: 10, tag });
      } finally {
        await cleanAmqp(ctx.amqpUrl, [`${tag}.Sink.on`, `${tag}.Sink.on.dead`], []);
      }
    },
  };
}

/** Cases g (bench/service-cases.ts): balanced requests and the HTTP gateway against a bare bus.request loop. */
function serviceCaseDef(kind: 'balanced' | 'gateway'): CaseDef {
  const titles = {
    balanced: "g AMQP bus.request with balance: 'round-robin', 2 instances, 50 in flight",
    gateway: 'g HTTP gateway (autocannon, 50 connections) to the same request',
  };
  return {
    id: `g-${kind}`,
    title: titles[kind],
    unit: 'req/s',
    raw: false,
    run: (ctx, _side, tag) => serviceCase(kind, { amqpUrl: ctx.amqpUrl, n: ctx.sizes.service, inflight: 50, tag }),
  };
}

/**
 * Case q (bench/queue-type-cases.ts): events on quorum queues in the Courier column, on classic
 * queues in the raw column (both Courier; the ratio is quorum / classic).
 */
const queueTypeCaseDef: CaseDef = {
  id: 'q',
  title: 'q AMQP events on quorum queues (raw = classic queues)',
  unit: 'msg/s',
  raw: true,
  brokerCpu: true,
  async run(ctx, side, tag) {
    try {
      return await queueTypeCase(side === 'courier' ? 'quorum' : 'classic', { amqpUrl: ctx.amqpUrl, n: ctx.sizes.events, window: WINDOW, tag });
    } finally {
      await cleanAmqp(ctx.amqpUrl, [`${tag}.QueueSink.on`, `${tag}.QueueSink.on.dead`], [tag]);
    }
  },
};

/** Cases i (bench/partition-cases.ts): per-key order (8 partitions) with 1, 2 and 4 consumers, against a plain group. */
function partitionCaseDef(consumers: 1 | 2 | 4): CaseDef {
  return {
    id: `i-${consumers}`,
    title: `i AMQP per-key order, 8 partitions, ${consumers} consumer${consumers > 1 ? 's' : ''}, 1 ms handler (vs a plain group)`,
    unit: 'msg/s',
    raw: false,
    async run(ctx, _side, tag) {
      try {
        return await partitionCase({ amqpUrl: ctx.amqpUrl, n: ctx.sizes.partitioned, consumers, tag });
      } finally {
        const { queues, exchanges } = partitionCaseResources(tag);
        await cleanAmqp(ctx.amqpUrl, queues, exchanges);
      }
    },
  };
}

const CASES: CaseDef[] = [
  eventsCase('a', 'a AMQP events, persistent + confirms', 'amqp'),
  rpcCase(1),
  rpcCase(100),
  eventsCase('c', 'c MQTT events, QoS 1, Mosquitto as docs/brokers.md recommends (periodic save)', 'mqtt'),
  eventsCase('c-held', 'c MQTT events, QoS 1, Mosquitto default window of 20, raw publishers held to it', 'mqtt', 'held'),
  memoryCase('events'),
  memoryCase('rpc'),
  backPressure,
  outboxCaseDef('plain'),
  outboxCaseDef('postgres'),
  outboxCaseDef('sqlite'),
  serviceCaseDef('balanced'),
  serviceCaseDef('gateway'),
  partitionCaseDef(1),
  partitionCaseDef(2),
  partitionCaseDef(4),
  tracingCase('off'),
  tracingCase('on'),
  queueTypeCaseDef,
];

function selected(o: Options): CaseDef[] {
  if (!o.only) return CASES;
  return CASES.filter((c) => o.only!.some((s) => c.id === s || c.id.startsWith(s)));
}

async function machine(amqpUrl: string, mosquitto?: string) {
  let rabbitmq = 'unknown';
  try {
    const conn = await amqplib.connect(amqpUrl);
    rabbitmq = String((conn.connection as unknown as { serverProperties?: { version?: string } }).serverProperties?.version ?? 'unknown');
    await conn.close();
  } catch {
    // reported as unknown
  }
  return {
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    rabbitmq,
    mosquitto: mosquitto ?? 'unknown',
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const ctx: Ctx = {
    o,
    sizes: o.smoke ? SMOKE : FULL,
    amqpUrl: process.env.COURIER_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    mqttUrls: {},
    runId: `bench-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`,
    entry: buildChildren(),
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const cases = selected(o);
  const mosquittos: OwnMosquitto[] = [];
  const killMosquitto = () => mosquittos.forEach((m) => m.kill());
  process.once('exit', killMosquitto);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (killMosquitto(), process.exit(130)));
  for (const kind of new Set(cases.map((c) => c.mqttBroker).filter((k): k is MqttBroker => k !== undefined))) {
    const given = process.env.COURIER_BENCH_MQTT_URL;
    if (given) {
      ctx.mqttUrls[kind] = given;
      continue;
    }
    const m = new OwnMosquitto(kind === 'recommended' ? { inflight: MQTT_INFLIGHT, persistence: true, autosaveOnChanges: false } : { inflight: MOSQUITTO_DEFAULT_INFLIGHT });
    mosquittos.push(m);
    await m.start();
    ctx.mqttUrls[kind] = m.url;
  }
  const rows: Row[] = [];
  const failures: string[] = [];
  try {
    for (const c of cases) {
      const rounds = c.rounds?.(ctx) ?? o.rounds;
      const samples: Record<SideName, Sample[]> = { courier: [], raw: [], plain: [] };
      const sides: SideName[] = ['courier', ...(c.raw ? ['raw' as const] : []), ...(c.plain ? ['plain' as const] : [])];
      try {
        for (let round = 0; round < rounds; round++) {
          // Rotate which side goes first, so drift in the machine's load hits every side alike.
          const order = sides.map((_, i) => sides[(i + round) % sides.length]);
          for (const side of order) {
            const tag = `${ctx.runId}-${c.id}-${side[0]}${round}`;
            const cpu0 = c.brokerCpu ? brokerCpuMs() : undefined;
            const s = await c.run(ctx, side, tag);
            const cpu1 = c.brokerCpu ? brokerCpuMs() : undefined;
            if (cpu0 !== undefined && cpu1 !== undefined && s.detail.count) s.detail.brokerCpuMsPer1k = (brokerCpuDelta(cpu0, cpu1) * 1000) / s.detail.count;
            samples[side].push(s);
            ctx.log(`${c.id} round ${round + 1}/${rounds} ${side}: ${Math.round(s.rate)} ${c.unit}` +
              (s.p99 !== undefined ? `, p50 ${s.p50!.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms` : '') + `, peak RSS ${s.rssMb.toFixed(0)} MB`);
          }
        }
        rows.push({
          id: c.id,
          title: c.title,
          unit: c.unit,
          courier: summarize(samples.courier),
          raw: c.raw ? summarize(samples.raw) : undefined,
          plain: c.plain ? summarize(samples.plain) : undefined,
        });
      } catch (err) {
        failures.push(`${c.id}: ${(err as Error).message}`);
        ctx.log(`case ${c.id} FAILED: ${(err as Error).stack ?? err}`);
      }
    }
  } finally {
    await Promise.all(mosquittos.map((m) => m.stop()));
  }
  const info = await machine(ctx.amqpUrl, cases.some((c) => c.mqttBroker) ? OwnMosquitto.version() : undefined);
  const report = {
    mode: (o.smoke ? 'smoke' : 'full') + (o.rawKeepsUnconfirmed ? ' (raw AMQP producer keeps unconfirmed messages)' : '') + (o.rawEnvelope ? " (raw AMQP sides carry Courier's envelope)" : '') + (o.rawPersistentRequests ? ' (raw AMQP requests persistent)' : ''), rounds: o.rounds, sizes: ctx.sizes, machine: info, rows, failures, wallMs: Date.now() - started };
  if (o.jsonOut) fs.writeFileSync(o.jsonOut, `${JSON.stringify(report, null, 2)}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(renderTable(report));
  process.exitCode = failures.length ? 1 : 0;
}

function summarize(samples: Sample[]): Side {
  const opt = (k: 'p50' | 'p99') => (samples.some((s) => s[k] !== undefined) ? median(samples.map((s) => s[k] ?? NaN)) : undefined);
  return {
    rate: median(samples.map((s) => s.rate)),
    p50: opt('p50'),
    p99: opt('p99'),
    peakRssMb: Math.max(...samples.map((s) => s.rssMb)),
    rounds: samples,
  };
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(2);
});

/**
 * A three-node RabbitMQ cluster in containers, shared by every cluster spec of one run
 * (rabbitCluster() starts it once; stopAllContainers() of brokers.ts removes it with its network
 * at the end of the run, the root hook's job, also when tests failed).
 *
 * - Image: the project's RabbitMQ image (brokers.ts ensureImage), its rabbitmq.conf replaced by
 *   CLUSTER_CONF below: classic-config peer discovery of rabbit@n1..n3, `pause_minority`
 *   partition handling (a node cut off from the majority stops serving and comes back by itself
 *   once healed; `ignore`, the default, leaves the cluster split for good), and a short
 *   `net_ticktime` so that a cut is noticed in seconds, not the default minute.
 * - One network of its own per run (`courier-cluster-<token>`), on which each node has the alias
 *   n1, n2, n3 and the hostname to match: node names are rabbit@n1.. in every run, the network
 *   keeps runs apart. A shared Erlang cookie, random per run (RABBITMQ_ERLANG_COOKIE).
 * - Each node's AMQP port is published on a fixed free loopback port, so its URL stays valid
 *   across kill/start. partition() attaches the node to the engine's default network first (its
 *   published port then stays reachable) and removes it from the cluster network: the node is
 *   cut off from its peers, not from its clients.
 *
 * Every wait is bounded.
 */
import crypto from 'node:crypto';
import type { StartedNetwork, StartedTestContainer } from 'testcontainers';
import { atStopAll, containerEngine, ensureImage, freePort, loadTestcontainers, trackContainer, untilSpeaks } from './brokers';

const IMAGE = () => process.env.COURIER_RABBITMQ_IMAGE ?? 'localhost/courier-rabbitmq:test';
export const NODE_NAMES = ['n1', 'n2', 'n3'] as const;
const START_TIMEOUT_MS = 180_000;

const CLUSTER_CONF = `loopback_users = none
listeners.tcp.default = 5672
log.console = true
log.console.level = info
cluster_formation.peer_discovery_backend = classic_config
${NODE_NAMES.map((n, i) => `cluster_formation.classic_config.nodes.${i + 1} = rabbit@${n}`).join('\n')}
cluster_formation.discovery_retry_limit = 60
cluster_formation.discovery_retry_interval = 1000
cluster_partition_handling = pause_minority
net_ticktime = 8
`;

export interface ClusterNode {
  /** n1, n2, n3: the alias and hostname. */
  readonly name: string;
  /** rabbit@n1 ... */
  readonly node: string;
  readonly url: string;
  readonly port: number;
  readonly id: string;
  /** SIGKILLs the node's container (the beam with it). */
  kill(): Promise<void>;
  /** Stops the node (SIGTERM: a clean shutdown). */
  stop(): Promise<void>;
  /** Starts a stopped or killed node and waits until it speaks AMQP and runs in the cluster again. */
  start(): Promise<void>;
  /** Cuts the node off from the other two (its clients still reach it). */
  partition(): Promise<void>;
  /** Undoes partition(). */
  heal(): Promise<void>;
  /** `rabbitmqctl <args>` on this node; rejects on a non-zero exit. */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
}

export interface RabbitCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's URL, n1 first. */
  readonly urls: readonly string[];
  byNode(node: string): ClusterNode;
  /** `rabbitmqctl <args>` on the first node that answers (skipping `except`). */
  ctl(args: string[], except?: readonly string[]): Promise<string>;
  /** rabbit@nX that leads quorum queue `queue` now (asked of a running node). */
  leaderOf(queue: string, except?: readonly string[]): Promise<string>;
  /** Where classic queue `queue` lives. */
  homeOf(queue: string, except?: readonly string[]): Promise<string>;
  /** Waits until every node runs in one cluster again (bounded). */
  untilWhole(timeoutMs?: number): Promise<void>;
}

let shared: Promise<RabbitCluster> | undefined;

/** The run's cluster, started on first use (throws when no container engine answers). */
export function rabbitCluster(): Promise<RabbitCluster> {
  shared ??= startCluster().catch((err) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

async function startCluster(): Promise<RabbitCluster> {
  const engine = await containerEngine();
  if (!engine.ok) throw new Error(`[cluster] no Docker-compatible engine answers (${engine.where})`);
  const tc = await loadTestcontainers();
  await ensureImage('amqp');
  const t0 = Date.now();
  const token = `${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const network: StartedNetwork = await new tc.Network().start();
  atStopAll(async () => {
    await network.stop().catch(() => undefined);
    shared = undefined;
  });
  const cookie = crypto.randomBytes(16).toString('hex').toUpperCase();
  const dockerode = (await tc.getContainerRuntimeClient()).container.dockerode;
  const defaultNetwork = (await dockerode.listNetworks()).some((n) => n.Name === 'podman') ? 'podman' : 'bridge';

  const startNode = async (name: string): Promise<ClusterNode> => {
    const port = await freePort();
    let started: StartedTestContainer;
    try {
      started = await new tc.GenericContainer(IMAGE())
        .withPullPolicy({ shouldPull: () => false })
        .withName(`courier-cluster-${token}-${name}`)
        .withHostname(name)
        .withNetwork(network)
        .withNetworkAliases(name)
        .withEnvironment({ RABBITMQ_NODENAME: `rabbit@${name}`, RABBITMQ_ERLANG_COOKIE: cookie })
        .withCopyContentToContainer([{ content: CLUSTER_CONF, target: '/etc/rabbitmq/rabbitmq.conf', mode: 0o644 }])
        .withExposedPorts({ container: 5672, host: port })
        .withLabels({ 'courier.test': '1', 'courier.pid': String(process.pid), 'courier.role': 'cluster', 'courier.start': token })
        .withWaitStrategy(tc.Wait.forLogMessage(/Server startup complete/))
        .withStartupTimeout(START_TIMEOUT_MS)
        .start();
    } catch (err) {
      const left = await dockerode.listContainers({ all: true, filters: { label: [`courier.start=${token}`] } });
      await Promise.all(left.map((c) => dockerode.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
      throw err;
    }
    trackContainer(started);
    const host = '127.0.0.1';
    const url = `amqp://guest:guest@${host}:${port}`;
    await untilSpeaks('amqp', host, port, 60_000);
    const container = () => dockerode.getContainer(started.getId());
    /** The container's state and the last 30 lines of its log (the engine's multiplexed stream: 8-byte frame headers). */
    const lastLines = async (): Promise<string> => {
      try {
        const state = (await container().inspect()).State;
        const raw = (await container().logs({ stdout: true, stderr: true, tail: 30 })) as unknown as Buffer;
        let text = raw.toString('utf8');
        if (raw.length >= 8 && raw[0] <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0) {
          const parts: Buffer[] = [];
          for (let at = 0; at + 8 <= raw.length; at += 8 + raw.readUInt32BE(at + 4)) parts.push(raw.subarray(at + 8, at + 8 + raw.readUInt32BE(at + 4)));
          text = Buffer.concat(parts).toString('utf8');
        }
        return `state ${state.Status} (exit ${state.ExitCode}); ${text.trim().slice(-3000)}`;
      } catch (e) {
        return `(no logs: ${(e as Error).message})`;
      }
    };
    const self: ClusterNode = {
      name,
      node: `rabbit@${name}`,
      url,
      port,
      id: started.getId(),
      async kill() {
        await container().kill({ signal: 'SIGKILL' });
        await untilStopped(started.getId());
      },
      async stop() {
        await container().stop({ t: 30 });
        await untilStopped(started.getId());
      },
      async start() {
        await container().start();
        try {
          await untilSpeaks('amqp', host, port, 90_000);
        } catch (err) {
          // Seen once in CI in a rolling restart (its other starts take ~20 s): what the node said
          // goes to the log and the error, and the container gets one more start.
          const said = await lastLines();
          console.log(`      [cluster] ${name} does not answer 90 s after its start; restarting it once. Its last lines:\n${said}`);
          await container().restart({ t: 10 });
          await untilSpeaks('amqp', host, port, 90_000).catch((again: Error) => {
            throw new Error(`${(err as Error).message}, and again after a restart: ${again.message}; last lines: ${said}`);
          });
        }
        await cluster.untilWhole(90_000);
      },
      async partition() {
        await dockerode
          .getNetwork(defaultNetwork)
          .connect({ Container: started.getId() })
          .catch((err: Error) => {
            if (!/already connected/i.test(err.message)) throw err;
          });
        await dockerode.getNetwork(network.getName()).disconnect({ Container: started.getId(), Force: true });
      },
      async heal() {
        await dockerode.getNetwork(network.getName()).connect({ Container: started.getId(), EndpointConfig: { Aliases: [name] } });
      },
      async ctl(args, timeoutMs = 30_000) {
        const r = await bounded(started.exec(['rabbitmqctl', ...args], { env: { RABBITMQ_ERLANG_COOKIE: cookie } }), timeoutMs, `rabbitmqctl ${args.join(' ')} on ${name}`);
        if (r.exitCode !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} on ${name} exited ${r.exitCode}: ${r.output.trim().slice(-400)}`);
        return r.stdout ?? r.output;
      },
    };
    return self;
  };

  const untilStopped = async (id: string) => {
    const deadline = Date.now() + 30_000;
    while ((await dockerode.getContainer(id).inspect()).State.Running) {
      if (Date.now() > deadline) throw new Error(`container ${id.slice(0, 12)} still running after 30 s`);
      await sleep(100);
    }
  };

  const nodes = await Promise.all(NODE_NAMES.map(startNode));
  const upMs = Date.now() - t0;
  const ctlAny = async (args: string[], except: readonly string[] = []) => {
    let last: unknown;
    for (const n of nodes) {
      if (except.includes(n.node) || except.includes(n.name)) continue;
      try {
        return await n.ctl(args, 15_000);
      } catch (err) {
        last = err;
      }
    }
    throw last ?? new Error('no node to ask');
  };
  const cluster: RabbitCluster = {
    nodes,
    urls: nodes.map((n) => n.url),
    byNode(node) {
      const n = nodes.find((x) => x.node === node || x.name === node);
      if (!n) throw new Error(`no cluster node ${node}`);
      return n;
    },
    ctl: ctlAny,
    async leaderOf(queue, except) {
      return queueField(await ctlAny(['list_queues', '-q', '--no-table-headers', 'name', 'leader'], except), queue);
    },
    async homeOf(queue, except) {
      return queueField(await ctlAny(['list_queues', '-q', '--no-table-headers', 'name', 'pid'], except), queue).replace(/^<([^.]+)\..*$/, '$1');
    },
    async untilWhole(timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        const running = await Promise.all(nodes.map((n) => n.ctl(['-q', 'cluster_status', '--formatter', 'json'], 10_000).then(runningNodes, () => [] as string[])));
        if (running.every((r) => r.length === nodes.length)) return;
        last = running.map((r, i) => `${nodes[i].name} sees [${r.join(', ')}]`).join('; ');
        if (Date.now() > deadline) throw new Error(`[cluster] not whole after ${timeoutMs} ms: ${last}`);
        await sleep(500);
      }
    },
  };
  const joined = await joinStragglers(cluster);
  console.log(
    `[cluster] 3 RabbitMQ nodes (${nodes.map((n) => `${n.name} :${n.port}`).join(', ')}) on network ${network.getName()}: ` +
      `up in ${upMs} ms, whole in ${Date.now() - t0} ms${joined ? ` (${joined} joined by hand)` : ''}`,
  );
  return cluster;
}

/** Peer discovery of nodes started at the same instant may leave one alone: join it by hand. */
async function joinStragglers(cluster: RabbitCluster): Promise<number> {
  try {
    await cluster.untilWhole(30_000);
    return 0;
  } catch {
    // a node formed a cluster of its own: below
  }
  const [first, ...rest] = cluster.nodes;
  let joined = 0;
  for (const n of rest) {
    const running = runningNodes(await n.ctl(['-q', 'cluster_status', '--formatter', 'json']));
    if (running.includes(first.node)) continue;
    joined++;
    await n.ctl(['stop_app']);
    await n.ctl(['reset']);
    await n.ctl(['join_cluster', first.node], 60_000);
    await n.ctl(['start_app'], 60_000);
  }
  await cluster.untilWhole(60_000);
  return joined;
}

function runningNodes(json: string): string[] {
  try {
    const s = JSON.parse(json) as { running_nodes?: string[] };
    return s.running_nodes ?? [];
  } catch {
    return [];
  }
}

/** The second column of `queue`'s row in a `list_queues name <field>` listing. */
function queueField(listing: string, queue: string): string {
  for (const line of listing.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name === queue && value) return value;
  }
  throw new Error(`queue '${queue}' not listed`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * The one broker fixture for every test that needs a broker. Order of choice:
 *   1. an explicit URL from the environment (COURIER_AMQP_URL, COURIER_MQTT_URL);
 *   2. a container started through testcontainers when a Docker-compatible engine answers
 *      (DOCKER_HOST, else /var/run/docker.sock, else a Podman socket at its usual places);
 *   3. the machine's own broker on its default port.
 * It says once which one it chose (console.log), and fails loudly when none answers.
 *
 * COURIER_REQUIRE_CONTAINERS=1 (set by .ci/run): no silent fall-back. If no engine answers or the
 * container does not start, amqpBroker()/mqttBroker() throw instead of using the local broker
 * (an explicit env URL is still honoured: it is a deliberate choice, not a fall-back).
 *
 * Containers are stopped at the end of the run, also when tests fail: by the root-level mocha
 * hook in test/helpers/root-hooks.ts (and by a root `after` this module registers when it is
 * loaded by a spec), and, as a last resort, synchronously on process exit and on SIGINT/SIGTERM.
 * There is no reaper (Ryuk cannot be pulled here): TESTCONTAINERS_RYUK_DISABLED defaults to true.
 *
 * Images: localhost/courier-rabbitmq:test and localhost/courier-mosquitto:test, built from
 * test/containers/* by scripts/container-engine.sh (or `docker build`, see docs/testing.md).
 * Override with COURIER_RABBITMQ_IMAGE / COURIER_MOSQUITTO_IMAGE.
 *
 * Fault tests use amqpContainer()/mqttContainer(): a dedicated container (never the shared one)
 * with stop()/start()/restart()/pause()/unpause(). Its host port is FIXED when it is created (a
 * free port is chosen, then mapped explicitly), so its URL stays valid across stop/start/restart.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { redactUrl } from '../../lib/errors';

export type BrokerKind = 'amqp' | 'mqtt';

export interface BrokerEndpoint {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Where it came from: 'env', 'container' or 'local'. */
  readonly origin: 'env' | 'container' | 'local';
}

/** A dedicated broker container that a fault test may disturb. Its URL/port never change. */
export interface BrokerContainer extends BrokerEndpoint {
  readonly origin: 'container';
  readonly kind: BrokerKind;
  readonly id: string;
  /** Stops the broker (SIGTERM, then SIGKILL after `timeoutSec`); the container is kept. */
  stop(timeoutSec?: number): Promise<void>;
  /** Starts a stopped container and waits (bounded) until the broker speaks its protocol. */
  start(): Promise<void>;
  /** stop() + start(). `kill: true` kills the broker with SIGKILL instead of stopping it. */
  restart(opts?: { kill?: boolean; timeoutSec?: number }): Promise<void>;
  /** Freezes every process of the broker: connections stay open, nothing answers. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
  /** Removes the container (also done for every container at the end of the run). */
  dispose(): Promise<void>;
  /** Host port of every container port asked for with `ContainerOptions.extraPorts` (empty otherwise). */
  readonly extraPorts: Readonly<Record<number, number>>;
}

const DEFAULT_IMAGES: Record<BrokerKind, string> = {
  amqp: 'localhost/courier-rabbitmq:test',
  mqtt: 'localhost/courier-mosquitto:test',
};
const IMAGES: Record<BrokerKind, () => string> = {
  amqp: () => process.env.COURIER_RABBITMQ_IMAGE ?? DEFAULT_IMAGES.amqp,
  mqtt: () => process.env.COURIER_MOSQUITTO_IMAGE ?? DEFAULT_IMAGES.mqtt,
};
const CONTAINER_PORT: Record<BrokerKind, number> = { amqp: 5672, mqtt: 1883 };
const READY_LOG: Record<BrokerKind, RegExp> = {
  amqp: /Server startup complete/,
  mqtt: /mosquitto version \S+ running/,
};
const START_TIMEOUT_MS = Number(process.env.COURIER_CONTAINER_START_TIMEOUT_MS ?? 120_000);
const READY_TIMEOUT_MS = 90_000;

export function containersRequired(): boolean {
  const v = process.env.COURIER_REQUIRE_CONTAINERS;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

// ------------------------------------------------------------------ the shared endpoints

const chosen = new Map<string, Promise<BrokerEndpoint>>();

export function amqpBroker(): Promise<BrokerEndpoint> {
  return pick('amqp', process.env.COURIER_AMQP_URL, 'amqp://guest:guest@127.0.0.1:5672');
}

export function mqttBroker(): Promise<BrokerEndpoint> {
  return pick('mqtt', process.env.COURIER_MQTT_URL, 'mqtt://127.0.0.1:1883');
}

function pick(kind: BrokerKind, fromEnv: string | undefined, local: string): Promise<BrokerEndpoint> {
  let p = chosen.get(kind);
  if (!p) {
    p = resolve(kind, fromEnv, local);
    chosen.set(kind, p);
  }
  return p;
}

async function resolve(kind: BrokerKind, fromEnv: string | undefined, local: string): Promise<BrokerEndpoint> {
  const tried: string[] = [];
  const say = (e: BrokerEndpoint, extra = '') =>
    console.log(`[brokers] ${kind}: using ${e.origin} broker at ${redactUrl(e.url)}${extra}`);

  // 1. explicit URL
  if (fromEnv) {
    const e = endpointOf(kind, fromEnv, 'env');
    if (await answers(e.host, e.port)) {
      say(e);
      return e;
    }
    // An explicit URL that does not answer is an error, never a reason to use something else.
    throw new Error(`[brokers] ${kind}: COURIER_${kind.toUpperCase()}_URL=${redactUrl(fromEnv)} does not answer.`);
  }

  // 2. container
  const engine = await containerEngine();
  if (engine.ok) {
    try {
      const t0 = Date.now();
      const c = await startContainer(kind, 'shared');
      say(c, ` (container ${c.id.slice(0, 12)} from ${IMAGES[kind]()}, started in ${Date.now() - t0} ms, engine ${engine.where})`);
      return { url: c.url, host: c.host, port: c.port, origin: 'container' };
    } catch (err) {
      const msg = `[brokers] ${kind}: the engine at ${engine.where} answers but the ${IMAGES[kind]()} container did not start: ${(err as Error).message}`;
      if (containersRequired()) throw new Error(`${msg} (COURIER_REQUIRE_CONTAINERS is set: no fall-back)`);
      console.warn(`${msg}; falling back to the local broker`);
      tried.push(`container (${(err as Error).message})`);
    }
  } else {
    if (containersRequired()) {
      throw new Error(
        `[brokers] ${kind}: COURIER_REQUIRE_CONTAINERS is set but no Docker-compatible engine answers (${engine.where}). ` +
          'Run scripts/container-engine.sh and export the DOCKER_HOST it prints.',
      );
    }
    tried.push(`container (no engine: ${engine.where})`);
  }

  // 3. the machine's own broker
  const e = endpointOf(kind, local, 'local');
  if (await answers(e.host, e.port)) {
    say(e, engine.ok ? '' : ` (no container engine: ${engine.where})`);
    return e;
  }
  tried.push(`local ${redactUrl(local)}`);
  throw new Error(
    `No ${kind} broker answers (tried: ${tried.join('; ')}). Start one (see README / docs/testing.md) or set COURIER_${kind.toUpperCase()}_URL.`,
  );
}

function endpointOf<O extends BrokerEndpoint['origin']>(kind: BrokerKind, url: string, origin: O) {
  const u = new URL(url);
  const port = Number(u.port) || CONTAINER_PORT[kind];
  return { url, host: u.hostname, port, origin };
}

// ------------------------------------------------------------------ dedicated containers for fault tests

/** A new RabbitMQ container of its own (throws when no engine answers). */
export function amqpContainer(opts?: ContainerOptions): Promise<BrokerContainer> {
  return dedicated('amqp', opts);
}

/** A new Mosquitto container of its own, with the durable configuration (throws when no engine answers). */
export function mqttContainer(opts?: ContainerOptions): Promise<BrokerContainer> {
  return dedicated('mqtt', opts);
}

async function dedicated(kind: BrokerKind, opts?: ContainerOptions): Promise<BrokerContainer> {
  const engine = await containerEngine();
  if (!engine.ok) throw new Error(`[brokers] ${kind}: no Docker-compatible engine answers (${engine.where})`);
  return startContainer(kind, 'dedicated', opts);
}

// ------------------------------------------------------------------ engine detection

export interface EngineAnswer {
  readonly ok: boolean;
  /** The socket/URL that answered, or why none did. */
  readonly where: string;
}

let engineAnswer: Promise<EngineAnswer> | undefined;

/** Whether a Docker-compatible engine answers; sets DOCKER_HOST for testcontainers when it found one itself. */
export function containerEngine(): Promise<EngineAnswer> {
  engineAnswer ??= detectEngine();
  return engineAnswer;
}

async function detectEngine(): Promise<EngineAnswer> {
  const fromEnv = process.env.DOCKER_HOST;
  if (fromEnv) {
    const ok = await pingDocker(fromEnv);
    return { ok, where: ok ? `DOCKER_HOST=${fromEnv}` : `DOCKER_HOST=${fromEnv} does not answer /_ping` };
  }
  const candidates = ['/var/run/docker.sock'];
  if (process.env.XDG_RUNTIME_DIR) candidates.push(`${process.env.XDG_RUNTIME_DIR}/podman/podman.sock`);
  candidates.push('/run/podman/podman.sock');
  for (const sock of candidates) {
    if (fs.existsSync(sock) && (await pingDocker(`unix://${sock}`))) {
      process.env.DOCKER_HOST = `unix://${sock}`;
      return { ok: true, where: `unix://${sock}` };
    }
  }
  return { ok: false, where: `DOCKER_HOST unset and none of ${candidates.join(', ')} answers` };
}

/**
 * The same answer as containerEngine(), synchronously (a child process pings, bounded to ~8 s),
 * for spec files that must decide at load time whether to register container tests.
 */
export function containerEngineSync(): EngineAnswer {
  const script = `
    const http = require('node:http'); const fs = require('node:fs');
    const ping = (h) => new Promise((done) => {
      let o; if (h.startsWith('unix://')) o = { socketPath: h.slice(7) };
      else { try { const u = new URL(h.replace(/^tcp:/, 'http:')); o = { host: u.hostname, port: Number(u.port) || 2375 }; } catch { return done(false); } }
      const r = http.get({ ...o, path: '/_ping', timeout: 2500 }, (res) => { res.resume(); done(res.statusCode === 200); });
      r.on('timeout', () => r.destroy(new Error('timeout'))); r.on('error', () => done(false)); });
    (async () => {
      const env = process.env.DOCKER_HOST;
      if (env) { process.stdout.write(JSON.stringify({ ok: await ping(env), host: env })); return; }
      const c = ['/var/run/docker.sock'];
      if (process.env.XDG_RUNTIME_DIR) c.push(process.env.XDG_RUNTIME_DIR + '/podman/podman.sock');
      c.push('/run/podman/podman.sock');
      for (const s of c) if (fs.existsSync(s) && await ping('unix://' + s)) { process.stdout.write(JSON.stringify({ ok: true, host: 'unix://' + s })); return; }
      process.stdout.write(JSON.stringify({ ok: false, host: c.join(', ') }));
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 8000 });
  try {
    const a = JSON.parse(r.stdout) as { ok: boolean; host: string };
    if (a.ok) {
      process.env.DOCKER_HOST ??= a.host;
      return { ok: true, where: a.host };
    }
    return { ok: false, where: process.env.DOCKER_HOST ? `DOCKER_HOST=${a.host} does not answer /_ping` : `DOCKER_HOST unset and none of ${a.host} answers` };
  } catch {
    return { ok: false, where: `engine probe failed (${r.error?.message ?? r.stderr})` };
  }
}

/** GET /_ping on a Docker API (unix:// or tcp://), bounded to 3 s. */
export function pingDocker(dockerHost: string, timeoutMs = 3000): Promise<boolean> {
  return new Promise((done) => {
    let opts: http.RequestOptions;
    try {
      if (dockerHost.startsWith('unix://')) opts = { socketPath: dockerHost.slice('unix://'.length), path: '/_ping' };
      else {
        const u = new URL(dockerHost.replace(/^tcp:/, 'http:'));
        opts = { host: u.hostname, port: Number(u.port) || 2375, path: '/_ping' };
      }
    } catch {
      done(false);
      return;
    }
    const req = http.get({ ...opts, timeout: timeoutMs }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
  });
}

// ------------------------------------------------------------------ starting containers

type Started = import('testcontainers').StartedTestContainer;
const live = new Map<string, Started>();
/** What else stopAllContainers() removes after the containers (a cluster's network). */
const afterStop = new Set<() => Promise<void>>();

/**
 * Puts a container started elsewhere (test/helpers/rabbit-cluster.ts) under the same clean-up as
 * this module's own: removed by stopAllContainers(), and on exit as a last resort.
 */
export function trackContainer(started: Started): void {
  installExitHandlers();
  live.set(started.getId(), started);
}

/** Runs `fn` at the end of stopAllContainers(), once (e.g. removing a network). */
export function atStopAll(fn: () => Promise<void>): void {
  afterStop.add(fn);
}

export async function loadTestcontainers(): Promise<typeof import('testcontainers')> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  // /.dockerenv exists on these machines, so testcontainers would answer Podman's gateway address;
  // the published ports are reachable on the loopback address, which is what tests may target.
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
  return import('testcontainers');
}

const CONTEXT: Record<BrokerKind, string> = { amqp: 'rabbitmq', mqtt: 'mosquitto' };
const built = new Map<string, Promise<void>>();

/**
 * The image must exist locally; when it does not (a laptop with Docker, nothing prepared), it is
 * built once from test/containers/<name>/Containerfile, on localhost/courier-base:bookworm when
 * that exists, else on COURIER_BASE_IMAGE (default debian:bookworm-slim, pulled by the engine).
 */
export function ensureImage(kind: BrokerKind): Promise<void> {
  const image = IMAGES[kind]();
  let p = built.get(image);
  if (!p) {
    p = (async () => {
      const tc = await loadTestcontainers();
      const dockerode = (await tc.getContainerRuntimeClient()).container.dockerode;
      const exists = async (name: string) =>
        dockerode.getImage(name).inspect().then(
          () => true,
          () => false,
        );
      const context = path.resolve(__dirname, '..', 'containers', CONTEXT[kind]);
      const hash = contextHash(context);
      const label = await dockerode
        .getImage(image)
        .inspect()
        .then(
          (i) => i.Config?.Labels?.['courier.context'] ?? 'unlabelled',
          () => undefined,
        );
      if (label === hash || (label !== undefined && process.env.COURIER_IMAGE_CHECK === '0')) return;
      if (label !== undefined && (IMAGES[kind]() !== DEFAULT_IMAGES[kind] || label === 'unlabelled')) return; // someone else's image: use it as is
      const localBase = 'localhost/courier-base:bookworm';
      const base = process.env.COURIER_BASE_IMAGE ?? ((await exists(localBase)) ? localBase : 'debian:bookworm-slim');
      const t0 = Date.now();
      console.log(`[brokers] ${kind}: image ${image} ${label === undefined ? 'missing' : 'out of date'}; building it from ${path.relative(process.cwd(), context)} on ${base} (once)`);
      await tc.GenericContainer.fromDockerfile(context, 'Containerfile')
        .withBuildArgs({ BASE: base, CONTEXT_HASH: hash })
        .build(image, { deleteOnExit: false });
      console.log(`[brokers] ${kind}: built ${image} in ${Date.now() - t0} ms`);
    })();
    built.set(image, p);
  }
  return p;
}

/** The same hash as scripts/container-engine.sh: sha256 over `sha256sum` lines of every file, sorted by path. */
function contextHash(dir: string): string {
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push(`./${r}`);
    }
  };
  walk('');
  files.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  const lines = files
    .map((f) => `${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')}  ${f}\n`)
    .join('');
  return crypto.createHash('sha256').update(lines).digest('hex').slice(0, 16);
}

export interface ContainerOptions {
  /** Replaces the image's command, e.g. another configuration file for a negative control. */
  readonly command?: string[];
  /**
   * Files copied into the container before it starts (e.g. a rabbitmq.conf with a TLS listener,
   * and the certificates it names). `mode` defaults to 0o644 (the broker does not run as root).
   */
  readonly files?: ReadonlyArray<{ readonly target: string; readonly content: string | Buffer; readonly mode?: number }>;
  /**
   * More container ports to publish (e.g. 5671 for TLS), each on a fixed free loopback port like
   * the main one; their host ports are in `BrokerContainer.extraPorts`.
   */
  readonly extraPorts?: readonly number[];
}

async function startContainer(kind: BrokerKind, role: 'shared' | 'dedicated', opts: ContainerOptions = {}): Promise<BrokerContainer> {
  const tc = await loadTestcontainers();
  await ensureImage(kind);
  const cport = CONTAINER_PORT[kind];
  const hostPort = await freePort();
  const token = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  installExitHandlers();
  const extraPorts: Record<number, number> = {};
  let started: Started;
  try {
    let gc = new tc.GenericContainer(IMAGES[kind]());
    if (opts.command) gc = gc.withCommand(opts.command);
    if (opts.files?.length) {
      gc = gc.withCopyContentToContainer(opts.files.map((f) => ({ content: f.content, target: f.target, mode: f.mode ?? 0o644 })));
    }
    for (const p of opts.extraPorts ?? []) extraPorts[p] = await freePort();
    started = await gc
      .withPullPolicy({ shouldPull: () => false })
      .withExposedPorts({ container: cport, host: hostPort }, ...Object.entries(extraPorts).map(([c, h]) => ({ container: Number(c), host: h })))
      .withLabels({ 'courier.test': '1', 'courier.pid': String(process.pid), 'courier.role': role, 'courier.start': token })
      .withWaitStrategy(tc.Wait.forLogMessage(READY_LOG[kind]))
      .withStartupTimeout(START_TIMEOUT_MS)
      .start();
  } catch (err) {
    // testcontainers leaves a container whose wait failed: remove it (found by its start token).
    await removeByLabel(`courier.start=${token}`).catch(() => undefined);
    throw err;
  }
  live.set(started.getId(), started);
  const host = started.getHost();
  const port = started.getMappedPort(cport);
  const url = kind === 'amqp' ? `amqp://guest:guest@${host}:${port}` : `mqtt://${host}:${port}`;
  // The log line says the broker listens inside the container; make sure it is reachable here too.
  await untilSpeaks(kind, host, port, READY_TIMEOUT_MS);
  return handle(kind, started, url, host, port, extraPorts);
}

function handle(kind: BrokerKind, started: Started, url: string, host: string, port: number, extraPorts: Record<number, number> = {}): BrokerContainer {
  const id = started.getId();
  const docker = async () => {
    const { getContainerRuntimeClient } = await loadTestcontainers();
    return (await getContainerRuntimeClient()).container.dockerode.getContainer(id);
  };
  const h: BrokerContainer = {
    kind,
    id,
    url,
    host,
    port,
    origin: 'container',
    extraPorts,
    async stop(timeoutSec = 10) {
      await (await docker()).stop({ t: timeoutSec });
    },
    async start() {
      await (await docker()).start();
      await untilSpeaks(kind, host, port, READY_TIMEOUT_MS);
    },
    async restart(opts = {}) {
      const c = await docker();
      if (opts.kill) await c.kill({ signal: 'SIGKILL' });
      else await c.stop({ t: opts.timeoutSec ?? 10 });
      await waitStopped(c, 30_000);
      await c.start();
      await untilSpeaks(kind, host, port, READY_TIMEOUT_MS);
    },
    async pause() {
      await (await docker()).pause();
    },
    async unpause() {
      await (await docker()).unpause();
    },
    async dispose() {
      if (!live.delete(id)) return;
      await started.stop({ timeout: 5, remove: true, removeVolumes: true });
    },
  };
  return h;
}

async function waitStopped(c: import('dockerode').Container, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await c.inspect();
    if (!s.State.Running) return;
    if (Date.now() > deadline) throw new Error(`container ${c.id.slice(0, 12)} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops and removes every container this process started. Idempotent; bounded. */
export async function stopAllContainers(): Promise<void> {
  const all = [...live.entries()];
  live.clear();
  chosen.clear();
  await Promise.all(
    all.map(async ([id, c]) => {
      try {
        await withTimeout(c.stop({ timeout: 5, remove: true, removeVolumes: true }), 30_000, `stopping ${id.slice(0, 12)}`);
      } catch (err) {
        console.warn(`[brokers] could not stop container ${id.slice(0, 12)}: ${(err as Error).message}`);
        live.set(id, c); // leave it to the exit handler
      }
    }),
  );
  const cleanups = [...afterStop];
  afterStop.clear();
  for (const fn of cleanups) await withTimeout(fn(), 30_000, 'a clean-up after the containers').catch((err) => console.warn(`[brokers] ${(err as Error).message}`));
}

async function removeByLabel(label: string): Promise<void> {
  const { getContainerRuntimeClient } = await loadTestcontainers();
  const dockerode = (await getContainerRuntimeClient()).container.dockerode;
  const list = await dockerode.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(list.map((c) => dockerode.getContainer(c.Id).remove({ force: true, v: true })));
}

let exitHandlersInstalled = false;
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  // Last resort when the mocha hooks did not run (crash, process.exit): remove what is left,
  // synchronously, with a child process that speaks to the engine's API.
  process.on('exit', () => removeSync([...live.keys()]));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      removeSync([...live.keys()]);
      live.clear();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

function removeSync(ids: string[]): void {
  if (ids.length === 0) return;
  const dockerHost = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const script = `
    const http = require('node:http');
    const [host, ...ids] = process.argv.slice(1);
    const base = host.startsWith('unix://') ? { socketPath: host.slice(7) } : (() => { const u = new URL(host.replace(/^tcp:/, 'http:')); return { host: u.hostname, port: Number(u.port) || 2375 }; })();
    let n = ids.length;
    for (const id of ids) {
      const req = http.request({ ...base, method: 'DELETE', path: '/containers/' + id + '?force=true&v=true', timeout: 20000 }, (res) => { res.resume(); res.on('end', () => { if (--n === 0) process.exit(0); }); });
      req.on('error', () => { if (--n === 0) process.exit(1); });
      req.on('timeout', () => req.destroy());
      req.end();
    }`;
  spawnSync(process.execPath, ['-e', script, dockerHost, ...ids], { stdio: 'ignore', timeout: 30_000 });
}

// ------------------------------------------------------------------ probes

export function answers(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Whether the broker at host:port speaks its protocol (a TCP accept alone proves nothing when a
 * port forwarder sits in front): AMQP answers the protocol header with Connection.Start (a method
 * frame, type 1); MQTT answers CONNECT with CONNACK (0x20).
 */
export function speaks(kind: BrokerKind, host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.once('close', () => done(false));
    s.once('connect', () => {
      if (kind === 'amqp') s.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]));
      else {
        const id = Buffer.from(`probe${process.pid}${Date.now() % 100000}`);
        const body = Buffer.concat([
          Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 10]), // "MQTT", v3.1.1, clean session, keepalive 10
          Buffer.from([0, id.length]),
          id,
        ]);
        s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
      }
    });
    s.once('data', (d) => done(kind === 'amqp' ? d[0] === 1 : d[0] === 0x20));
  });
}

export async function untilSpeaks(kind: BrokerKind, host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await speaks(kind, host, port))) {
    if (Date.now() > deadline) throw new Error(`${kind} broker at ${host}:${port} does not answer after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A port that is free on the loopback address now (used for a fixed host port mapping). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

// When a spec file loads this module, mocha's globals exist: register a root-level `after` so
// containers are stopped at the end of the run even without test/helpers/root-hooks.ts.
// (When root-hooks.ts loaded this module first, the globals do not exist yet and its hook serves.)
const mochaAfter = (globalThis as { after?: (name: string, fn: () => Promise<void>) => unknown }).after;
if (typeof mochaAfter === 'function') {
  mochaAfter('stop broker containers', async function (this: { timeout(ms: number): void }) {
    this.timeout(60_000);
    await stopAllContainers();
  });
}

/**
 * One `describe(kind)` per shared broker, amqp then mqtt, whose before() picks the broker (bounded
 * by `timeoutMs`: a container may have to start). `body` declares the tests; `broker()` gives the
 * endpoint inside them (it throws if called before the before() ran, at declaration time).
 */
export function describeEachBroker(body: (kind: BrokerKind, broker: () => BrokerEndpoint) => void, timeoutMs = 150_000): void {
  for (const [kind, pickBroker] of [
    ['amqp', amqpBroker],
    ['mqtt', mqttBroker],
  ] as const) {
    describe(kind, () => {
      let endpoint: BrokerEndpoint | undefined;
      before(async function () {
        this.timeout(timeoutMs);
        endpoint = await pickBroker();
      });
      body(kind, () => {
        if (!endpoint) throw new Error(`describeEachBroker: the ${kind} broker is picked in before(); call broker() inside a test`);
        return endpoint;
      });
    });
  }
}

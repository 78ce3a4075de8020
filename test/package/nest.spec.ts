/**
 * courier-bus/nest as a user installs it: the packed tarball in fresh projects beside NestJS,
 * the app in test/package/nest/ compiled by tsc with decorator metadata (what Nest's injector
 * needs) and run by plain `node`, started with @nestjs/testing:
 *   nest12  NestJS 12 (ES modules only), the app an ES module: it imports courier-bus/nest
 *           through the ESM wrapper, which loads the CommonJS build, which requires NestJS 12.
 *   nest11  NestJS 11 (CommonJS), the app CommonJS.
 *   bare    no NestJS: importing courier-bus/nest names the missing package.
 * In each Nest project, on memory, RabbitMQ and Mosquitto: an order and a product provider, found
 * by discovery, exchange events and a request; OrderService publishes from its own
 * onApplicationBootstrap; a handler throwing NotFoundException is retried, then dead-lettered; a
 * handler in flight when the app closes finishes and is acked: a new consumer of its subscription
 * gets nothing (the negative control: with a shutdown timeout shorter than the handler, it gets
 * the message again). A Courier class with problems fails the app's start with one StartupError.
 * The built sample the package ships (dist/samples/nestjs) runs from node_modules with node.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { deleteListedQueues } from '../reliability/amqp-harness';
import { NPM_FLAGS, packedTarball, project, ROOT, run, locked } from './package-kit';

const APP = path.join(__dirname, 'nest');
/** NestJS 11's last minor: not in this repository's lock (its dev dependencies are NestJS 12). */
const NEST_11 = ['@nestjs/core@^11.1.0', '@nestjs/common@^11.1.0', '@nestjs/testing@^11.1.0'];

interface Report {
  transport: string;
  busIsCoreBus: boolean;
  entries: string[];
  quote: unknown;
  refundAttempts: number;
  deadLetters: { reason: string; errorName: string; errorMessage: string }[];
  closeMs: number;
  finishedBeforeClose: boolean;
  redelivered: number;
}

/** Compiles the app as a Nest project does: tsc, decorators with metadata, strict. */
async function compile(dir: string): Promise<void> {
  const compilerOptions = {
    target: 'ES2022',
    module: 'nodenext',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    skipLibCheck: true,
    outDir: 'out',
  };
  const files = fs.readdirSync(APP).filter((f) => f.endsWith('.ts'));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }, null, 2));
  await run(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [ROOT] }), '-p', 'tsconfig.json'], dir);
}

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as T;
}

describe('courier-bus/nest, installed beside NestJS 11 and 12', function () {
  this.timeout(120_000);
  let tmp: string;
  let brokerEnv: NodeJS.ProcessEnv;
  const dirs: Record<'nest12' | 'nest11' | 'bare', string> = { nest12: '', nest11: '', bare: '' };
  const runId = randomBytes(4).toString('hex');

  before(async function () {
    // Above its three steps' own bounds (run(): 120 s each), so that a slow one fails with its output.
    this.timeout(400_000);
    const t0 = Date.now();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-nest-'));
    // The packing (prepack builds dist/) and the installs of everything else run at once; the
    // tarball is installed last, into projects that have its peers already.
    const packing = packedTarball();
    const peers = ['class-validator', 'class-transformer', 'reflect-metadata'].map(locked);
    const clients = ['amqplib', 'mqtt', '@types/node', 'rxjs'].map(locked);
    const nest12 = ['@nestjs/core', '@nestjs/common', '@nestjs/testing'].map(locked);
    const [tarball, amqp, mqtt] = await Promise.all([
      packing,
      amqpBroker(),
      mqttBroker(),
      (async () => {
        [dirs.nest12, dirs.nest11, dirs.bare] = await Promise.all([
          project(path.join(tmp, 'nest12'), 'module', APP, [...peers, ...clients, ...nest12]),
          project(path.join(tmp, 'nest11'), 'commonjs', APP, [...peers, ...clients, ...NEST_11]),
          project(path.join(tmp, 'bare'), 'commonjs', APP, peers),
        ]);
      })(),
    ]);
    brokerEnv = { COURIER_AMQP_URL: amqp.url, COURIER_MQTT_URL: mqtt.url };
    const installed = Date.now();
    await Promise.all(Object.values(dirs).map((dir) => run('npm', ['install', ...NPM_FLAGS, tarball], dir)));
    const tarballIn = Date.now();
    await Promise.all([compile(dirs.nest12), compile(dirs.nest11)]);
    console.log(`      set-up: projects and packing ${installed - t0} ms, the tarball ${tarballIn - installed} ms, compiling ${Date.now() - tarballIn} ms`);
  });

  after(async () => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    // The apps' groups are `nest-<run>-...` (nest/services.ts): their queues on RabbitMQ go with the run.
    if (brokerEnv) await deleteListedQueues(brokerEnv.COURIER_AMQP_URL!, [`nest-${runId}`]);
  });

  async function app(which: 'nest12' | 'nest11', transport: string, env: NodeJS.ProcessEnv = {}): Promise<Report> {
    const r = await run(process.execPath, ['out/main.js'], dirs[which], { ...brokerEnv, ...env, COURIER_NEST_TRANSPORT: transport, COURIER_NEST_RUN: `${runId}-${which}-${env['COURIER_NEST_RUN'] ?? 'ok'}` }, 60_000);
    return lastJson<Report>(r.stdout);
  }

  for (const which of ['nest12', 'nest11'] as const) {
    it(`${which}: the installed NestJS has the expected major and module format`, () => {
      const pkg = JSON.parse(fs.readFileSync(path.join(dirs[which], 'node_modules', '@nestjs', 'core', 'package.json'), 'utf8')) as { version: string; type?: string };
      assert.equal(pkg.version.split('.')[0], which === 'nest12' ? '12' : '11');
      assert.equal(pkg.type === 'module', which === 'nest12');
    });

    for (const transport of ['memory', 'amqp', 'mqtt']) {
      it(`${which} on ${transport}: discovered providers exchange events and a request, publish from onApplicationBootstrap, dead-letter an HttpException, ack the handler in flight at close`, async () => {
        const r = await app(which, transport);
        assert.equal(r.busIsCoreBus, true, 'the injected bus is an instance of the Bus the app imports (one copy of Courier)');
        assert.ok(r.entries.includes('bootstrap published o-boot'), JSON.stringify(r.entries));
        for (const e of ['product saw o-boot', 'product saw o-1', 'reserved o-boot p1', 'reserved o-1 p2']) assert.ok(r.entries.includes(e), `${e} in ${JSON.stringify(r.entries)}`);
        assert.deepEqual(r.quote, { productId: 'p1', priceCents: 1250 });
        assert.equal(r.refundAttempts, 2, 'retried up to its attempts');
        assert.deepEqual(r.deadLetters, [{ reason: 'exhausted', errorName: 'NotFoundException', errorMessage: 'order o-1 has no payment' }]);
        assert.equal(r.finishedBeforeClose, true, 'close() waited for the handler in flight');
        assert.equal(r.redelivered, 0, 'the handler finished before close was acked: no new consumer gets it again');
      });
    }

    it(`${which}: the sample the package ships (docs/nestjs.md) runs from node_modules with node, on memory`, async () => {
      const r = await run(process.execPath, [path.join('node_modules', 'courier-bus', 'dist', 'samples', 'nestjs', 'main.js')], dirs[which], { COURIER_TRANSPORT: 'memory' }, 60_000);
      assert.deepEqual(r.stdout.trim().split('\n'), ['o-1 p-1: confirmed', 'o-2 p-2: rejected (insufficient-stock)', 'o-3 p-9: rejected (unknown-product)']);
    });

    it(`${which}: a Courier class with problems fails the app's start with one StartupError listing every problem`, async () => {
      const r = lastJson<{ started: boolean; isStartupError: boolean; name: string; code: string; problems: string[] }>((await run(process.execPath, ['out/startup-error.js'], dirs[which], {}, 30_000)).stdout);
      assert.equal(r.started, false);
      assert.equal(r.isStartupError, true, 'instanceof the StartupError the app imports');
      assert.equal(r.code, 'STARTUP_INVALID');
      assert.equal(r.problems.length, 3, JSON.stringify(r.problems));
      assert.ok(r.problems.some((p) => /PerRequest.*singleton/.test(p)), JSON.stringify(r.problems));
      assert.ok(r.problems.some((p) => /Orphan has @Subscribe methods but no @Subscriber/.test(p)), JSON.stringify(r.problems));
      assert.ok(r.problems.some((p) => /NotAMessage/.test(p)), JSON.stringify(r.problems));
    });
  }

  /** Starts the app in `signal` mode, sends SIGTERM once its slow handler runs; what it printed and how it ended. */
  function signalled(which: 'nest12' | 'nest11', env: NodeJS.ProcessEnv): Promise<{ lines: string[]; signal: NodeJS.Signals | null; code: number | null }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['out/main.js'], { cwd: dirs[which], env: { ...process.env, ...env, COURIER_NEST_MODE: 'signal' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('"slowStarted":true') && !child.killed) child.kill('SIGTERM');
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (!out.includes('"slowStarted":true')) reject(new Error(`the app did not start its slow handler: ${out}\n${err}`));
        else resolve({ lines: out.trim().split('\n'), signal, code });
      });
    });
  }

  for (const [which, transport] of [['nest12', 'amqp'], ['nest12', 'mqtt'], ['nest11', 'amqp']] as const) {
    it(`${which} on ${transport}: SIGTERM with enableShutdownHooks stops the bus after the handler in flight, which is acked`, async () => {
      const env = { ...brokerEnv, COURIER_NEST_TRANSPORT: transport, COURIER_NEST_RUN: `${runId}-${which}-signal` };
      const r = await signalled(which, env);
      // Nest re-raises the signal once its hooks ran.
      assert.equal(r.signal, 'SIGTERM', JSON.stringify(r));
      assert.deepEqual(JSON.parse(r.lines[r.lines.length - 1]!), { shutdownSignal: 'SIGTERM', slowFinished: true });
      const recount = lastJson<{ redelivered: number }>((await run(process.execPath, ['out/main.js'], dirs[which], { ...env, COURIER_NEST_MODE: 'recount' }, 30_000)).stdout);
      assert.equal(recount.redelivered, 0);
    });
  }

  for (const transport of ['amqp', 'mqtt']) {
    it(`negative control (nest12 on ${transport}): with a shutdown timeout shorter than the handler, the unfinished message is delivered again`, async () => {
      const r = await app('nest12', transport, { COURIER_NEST_RUN: 'cut', COURIER_NEST_SLOW_MS: '4000', COURIER_NEST_SHUTDOWN_MS: '100' });
      assert.equal(r.finishedBeforeClose, false);
      assert.equal(r.redelivered, 1, 'the recount sees the message the cut-short close did not ack');
    });
  }

  it('bare: importing courier-bus/nest without NestJS throws MissingPeerDependencyError naming @nestjs/common', async () => {
    const out = lastJson<Record<string, { name: string; code: string; packageName: string; message: string }>>((await run(process.execPath, ['missing-nest.cjs'], dirs.bare)).stdout);
    for (const how of ['require', 'import']) {
      assert.equal(out[how]!.name, 'MissingPeerDependencyError', how);
      assert.equal(out[how]!.packageName, '@nestjs/common', how);
      assert.match(out[how]!.message, /npm install @nestjs\/common`/, how);
    }
  });
});

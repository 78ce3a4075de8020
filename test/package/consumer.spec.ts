/**
 * Courier as a user installs it: `npm pack`, the tarball installed into fresh projects beside its
 * peers, the apps in test/package/consumer/ compiled with the project's own compiler and strict
 * flags and run by plain `node` (no ts-node, no TypeScript at run time):
 *   cjs   TypeScript, CommonJS: with the newest TypeScript on the registry (`module: nodenext`) and
 *         with the 5.x of this repository (`module: commonjs`); memory and RabbitMQ.
 *   esm   TypeScript, ES module (`module: nodenext`): memory, RabbitMQ and Mosquitto; the README's
 *         TypeScript blocks are type-checked and run here too.
 *   js    plain JavaScript with require() and the decorators called as functions; its node_modules
 *         (the tarball, the peers and amqplib) is the install size the package promises (<= 30 MB).
 *         Also a third-party adapter written on courier-bus/adapter-kit, run through
 *         courier-bus/conformance under node:test (no mocha in the project).
 *   bare  the peers only: importing an adapter whose client is missing names the package.
 * Installs go through npm's own cache (`--prefer-offline`, the versions this repository locks), so
 * only the newest TypeScript may come from the network, once per run.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { packedTarball, project, ROOT, run, locked } from './package-kit';

const APPS = path.join(__dirname, 'consumer');
const MAX_INSTALL_BYTES = 30 * 1024 * 1024;

const STRICT = {
  target: 'ES2022',
  lib: ['ES2022'],
  types: ['node'],
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: false,
  experimentalDecorators: true,
  outDir: 'out',
};

function tsconfig(dir: string, name: string, options: Record<string, unknown>, files: readonly string[]): string {
  fs.writeFileSync(path.join(dir, name), JSON.stringify({ compilerOptions: { ...STRICT, ...options }, files }, null, 2));
  return name;
}

function diskBytes(dir: string): Promise<number> {
  return run('du', ['-sk', dir], os.tmpdir()).then((r) => Number(r.stdout.split(/\s/)[0]) * 1024);
}

function assertRoundTrips(stdout: string, transports: readonly string[]): void {
  const results = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { transport: string; received: { productId: string; priceCents: number; type: string }[]; reply: unknown }[];
  assert.deepEqual(results.map((r) => r.transport), transports);
  for (const r of results) {
    assert.deepEqual(r.received.map((e) => [e.productId, e.priceCents]), [['p1', 999], ['p2', 5]], r.transport);
    assert.match(r.received[0]!.type, /^consumer\..+\.price-changed$/);
    assert.deepEqual(r.reply, { productId: 'p1', units: 7 }, r.transport);
  }
}

describe('the npm package, installed by a consumer', function () {
  this.timeout(240_000);
  let tmp: string;
  let tsLatest: string;
  let tsLatestVersion: string;
  let appEnv: NodeJS.ProcessEnv;
  let cjs: string, esm: string, js: string, bare: string;

  before(async function () {
    // Five installs side by side (one of typescript@latest from the registry): ~60 s on a quiet
    // machine, and over 300 s once on a loaded one (a CI run of 1,744 s instead of ~1,270).
    this.timeout(600_000);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-consumer-'));
    const [amqp, mqtt] = await Promise.all([amqpBroker(), mqttBroker()]);
    appEnv = { COURIER_AMQP_URL: amqp.url, COURIER_MQTT_URL: mqtt.url, COURIER_CONSUMER_RUN: randomBytes(4).toString('hex') };

    const tarball = await packedTarball();
    const peers = ['class-validator', 'class-transformer', 'reflect-metadata'].map(locked);
    const tools = path.join(tmp, 'ts-latest');
    [cjs, esm, js, bare] = await Promise.all([
      project(path.join(tmp, 'cjs'), 'commonjs', APPS, [tarball, ...peers, locked('amqplib'), locked('@types/node')]),
      project(path.join(tmp, 'esm'), 'module', APPS, [tarball, ...peers, locked('amqplib'), locked('mqtt'), locked('@types/node')]),
      project(path.join(tmp, 'js'), 'commonjs', APPS, [tarball, ...peers, locked('amqplib')]),
      project(path.join(tmp, 'bare'), 'commonjs', APPS, [tarball, ...peers]),
      // The TypeScript a new project gets today (7.x: the native compiler, whose npm `tsc` is a
      // node launcher of the platform binary). Installed once, used for every project.
      project(tools, 'commonjs', APPS, ['typescript@latest']),
    ]);
    tsLatest = path.join(tools, 'node_modules', 'typescript', 'bin', 'tsc');
    tsLatestVersion = (await run(process.execPath, [tsLatest, '--version'], tools)).stdout.trim();
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds the build, no TypeScript sources, tests, bench or CI scripts', async () => {
    const [entry] = JSON.parse((await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], ROOT)).stdout) as { files: { path: string }[] }[];
    const files = entry!.files.map((f) => f.path);
    assert.ok(files.includes('dist/lib/index.js') && files.includes('dist/lib/index.mjs') && files.includes('dist/lib/index.d.ts'));
    assert.ok(files.includes('bin/courier.js') && files.includes('CHANGELOG.md'));
    // The dashboard's page, served as it is (no build step for users).
    for (const f of ['index.html', 'app.js', 'charts.js', 'app.css']) assert.ok(files.includes(`dist/lib/dashboard/page/${f}`), f);
    assert.deepEqual(files.filter((f) => /^(test|bench|\.ci|scripts)\//.test(f) || (/\.ts$/.test(f) && !/\.d\.m?ts$/.test(f))), []);
  });

  it(`CommonJS TypeScript with the strict flags, compiled by the newest TypeScript (module nodenext), runs on memory and RabbitMQ`, async () => {
    const config = tsconfig(cjs, 'tsconfig.latest.json', { module: 'nodenext', outDir: 'out-latest' }, ['cjs-main.ts']);
    await run(process.execPath, [tsLatest, '-p', config], cjs);
    assert.match(tsLatestVersion, /Version \d+\./);
    const r = await run(process.execPath, ['out-latest/cjs-main.js'], cjs, appEnv);
    assertRoundTrips(r.stdout, ['memory', 'amqp']);
  });

  it('CommonJS TypeScript with the strict flags, compiled by TypeScript 5.x (module commonjs), runs on memory and RabbitMQ', async () => {
    const tsc5 = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
    assert.match((await run(process.execPath, [tsc5, '--version'], cjs)).stdout, /Version 5\./);
    const config = tsconfig(cjs, 'tsconfig.5.json', { module: 'commonjs', outDir: 'out-5' }, ['cjs-main.ts']);
    await run(process.execPath, [tsc5, '-p', config], cjs);
    const r = await run(process.execPath, ['out-5/cjs-main.js'], cjs, appEnv);
    assertRoundTrips(r.stdout, ['memory', 'amqp']);
  });

  it('an ES module in TypeScript (module nodenext, strict flags) runs on memory, RabbitMQ and Mosquitto', async () => {
    // mqtt.js's own declarations (through worker-timers) name DOM types (Worker, MessagePort):
    // with skipLibCheck false, an app that imports courier-bus/mqtt needs the DOM lib, as for
    // mqtt.js itself. Courier's declarations need nothing more than ES2022 and @types/node.
    const config = tsconfig(esm, 'tsconfig.json', { module: 'nodenext', lib: ['ES2022', 'DOM'] }, ['esm-main.ts']);
    await run(process.execPath, [tsLatest, '-p', config], esm);
    const r = await run(process.execPath, ['out/esm-main.js'], esm, appEnv);
    assertRoundTrips(r.stdout, ['memory', 'amqp', 'mqtt']);
  });

  it("the README's TypeScript blocks compile against the package (strict flags, ES module) and run", async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
    assert.ok(blocks.length >= 1, 'README.md has TypeScript blocks');
    const files = blocks.map((code, i) => {
      fs.writeFileSync(path.join(esm, `readme-${i}.ts`), `import 'reflect-metadata';\n${code}`);
      return `readme-${i}.ts`;
    });
    const config = tsconfig(esm, 'tsconfig.readme.json', { module: 'nodenext', outDir: 'out-readme' }, files);
    await run(process.execPath, [tsLatest, '-p', config], esm);
    for (const f of files) await run(process.execPath, [`out-readme/${f.replace(/\.ts$/, '.js')}`], esm, appEnv, 30_000);
  });

  it('plain JavaScript with require() and decorators called as functions runs on memory and RabbitMQ', async () => {
    const r = await run(process.execPath, ['plain.js'], js, appEnv);
    assertRoundTrips(r.stdout, ['memory', 'amqp']);
  });

  it('a third-party adapter on courier-bus/adapter-kit passes courier-bus/conformance under node:test, with no mocha installed', async () => {
    const r = await run(process.execPath, ['--test-reporter=tap', 'third-party-adapter.js'], js, appEnv, 120_000);
    assert.match(r.stdout, /^# fail 0$/m, r.stdout);
    assert.match(r.stdout, /^# pass 26$/m, r.stdout);
    assert.match(r.stdout, /conformance: third-party/);
  });

  it('with its peers and amqplib, Courier adds at most 30 MB to a project', async () => {
    const bytes = await diskBytes(path.join(js, 'node_modules'));
    console.log(`      installed size (tarball + peers + amqplib): ${(bytes / 1024 / 1024).toFixed(1)} MB on disk; newest TypeScript: ${tsLatestVersion}`);
    assert.ok(bytes <= MAX_INSTALL_BYTES, `${bytes} bytes`);
  });

  it('importing an adapter whose client is not installed throws one error naming the package', async () => {
    const r = await run(process.execPath, ['missing-client.js'], bare);
    const out = JSON.parse(r.stdout) as Record<string, { name: string; code: string; packageName: string; message: string } | string>;
    for (const [how, pkg] of [['require amqp', 'amqplib'], ['import amqp', 'amqplib'], ['require mqtt', 'mqtt'], ['import mqtt', 'mqtt']] as const) {
      const e = out[how] as { name: string; code: string; packageName: string; message: string };
      assert.equal(e.name, 'MissingPeerDependencyError', how);
      assert.equal(e.code, 'PEER_DEPENDENCY_MISSING', how);
      assert.equal(e.packageName, pkg, how);
      assert.match(e.message, new RegExp(`npm install ${pkg}\``), how);
    }
    assert.equal(out['memory'], 'function', 'the memory adapter needs no client');
  });

  it('the courier command runs from the installed package with plain node', async () => {
    const bin = path.join(js, 'node_modules', '.bin', 'courier');
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal((await run(bin, ['--version'], js)).stdout, `${version}\n`);
    const help = (await run(bin, ['--help'], js)).stdout;
    assert.match(help, /^Usage: courier <command>/);
    for (const c of ['demo', 'relay', 'tail', 'publish', 'dead-letters', 'metrics', 'services', 'dashboard']) assert.match(help, new RegExp(`^  ${c} `, 'm'), c);
    assert.match((await run(bin, ['demo', '--help'], js)).stdout, /^Usage: courier demo/);
    assert.match((await run(bin, ['dead-letters', '--help'], js)).stdout, /^Usage: courier dead-letters list/);
    assert.match((await run(bin, ['dashboard', '--help'], js)).stdout, /^Usage: courier dashboard/);
    // better-sqlite3 is an optional peer, not installed here: the demo keeps the services' state in
    // memory and says so (with it, SQLite; test/samples/demo.spec.ts).
    const demo = JSON.parse((await run(bin, ['demo', '--orders', '50', '--products', '4', '--json'], js)).stdout) as { ok: boolean; orders: number; notices: string[]; product: { store: string } };
    assert.deepEqual([demo.ok, demo.orders], [true, 50]);
    assert.match(demo.notices.join('\n'), /better-sqlite3 is not installed: the product-service keeps its state in memory/);
    assert.match(demo.product.store, /^memory/);
  });
});

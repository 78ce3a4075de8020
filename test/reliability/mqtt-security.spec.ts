/**
 * Issue 7 cases 10-12 for MQTT, against Mosquitto instances the test starts: TLS with a CA and
 * certificates generated here with openssl, a canary password that must never surface, and ACL
 * denials as typed errors on a connection that survives.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IsInt } from 'class-validator';
import { AccessRefusedError, ConnectionError, consoleLogger, createBus, Message, PublishRejectedError, Subscribe, Subscriber } from '../../lib';
import { mqttTransport } from '../../adapters/mqtt';
import { uniq, waitFor } from '../helpers/wait';
import { MqttFixture } from '../adapters/mqtt/mqtt-fixture';
import { MqttBroker } from './mqtt-broker';
import { countedBus, Tick, tickSubscriber } from './mqtt-harness';

@Message('rel.mqtt.secret')
class Secret {
  @IsInt() n!: number;
}

function makeCerts(dir: string): { ca: string; good: { cert: string; key: string }; wrong: { cert: string; key: string } } {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=Courier Test CA');
  const leaf = (name: string, host: string) => {
    fs.writeFileSync(f(`${name}.ext`), `subjectAltName=DNS:${host}\n`);
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${host}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
    fs.chmodSync(f(`${name}.key`), 0o644); // read by mosquitto after it dropped root
    return { cert: f(`${name}.crt`), key: f(`${name}.key`) };
  };
  return { ca: f('ca.crt'), good: leaf('server', 'localhost'), wrong: leaf('wrong', 'wrong.example') };
}

describe('reliability: MQTT security (own Mosquitto)', function () {
  this.timeout(30_000);

  it('10. TLS: connects with the CA, fails without it (verification on by default) and with the wrong host name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-tls-'));
    fs.chmodSync(dir, 0o755);
    const certs = makeCerts(dir);
    const good = new MqttBroker({ persistence: false, tls: { ca: certs.ca, ...certs.good } });
    const wrong = new MqttBroker({ persistence: false, tls: { ca: certs.ca, ...certs.wrong } });
    try {
      await Promise.all([good.start(), wrong.start()]);
      const ca = fs.readFileSync(certs.ca);
      const attempt = async (url: string, tls?: { ca: Buffer }) => {
        const t = mqttTransport({ url, tls, connectTimeoutMs: 2000, startTimeoutMs: 2000, reconnect: { minMs: 500, maxMs: 500 } });
        const errors: string[] = [];
        t.on('error', (e) => errors.push(e.message));
        const r = await t.connect().then(() => 'connected', (e: Error) => e);
        await t.close({ timeoutMs: 500 });
        return { r, errors };
      };
      const ok = await attempt(`mqtts://localhost:${good.port}`, { ca });
      assert.equal(ok.r, 'connected');
      const noCa = await attempt(`mqtts://localhost:${good.port}`);
      assert.ok(noCa.r instanceof ConnectionError, `without the CA: ${noCa.r}`);
      assert.ok(noCa.errors.some((m) => /self[- ]signed|unable to (get|verify)|certificate/i.test(m)), noCa.errors.join('; '));
      const badHost = await attempt(`mqtts://localhost:${wrong.port}`, { ca });
      assert.ok(badHost.r instanceof ConnectionError, `wrong host name: ${badHost.r}`);
      assert.ok(badHost.errors.some((m) => /altnames|Hostname|does not match/i.test(m)), badHost.errors.join('; '));
      console.log(`      [mqtt tls] with CA: connected; without CA: ${noCa.errors[0]}; wrong host: ${badHost.errors[0]}`);
    } finally {
      await Promise.all([good.dispose(), wrong.dispose()]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('11. a canary password never appears in logs, error messages, events or dead-letter headers', async () => {
    const canary = `Canary-${uniq('pw')}`;
    const broker = new MqttBroker({ persistence: false, users: { courier: canary } });
    await broker.start();
    const seen: string[] = [];
    const original = { log: console.log, warn: console.warn, error: console.error };
    const capture = (k: 'log' | 'warn' | 'error') => (...a: unknown[]) => {
      seen.push(a.map(String).join(' '));
      if (k === 'log') original.log(...a);
    };
    console.warn = capture('warn');
    console.error = capture('error');
    try {
      const fixture = new MqttFixture(`mqtt://courier:${encodeURIComponent(canary)}@127.0.0.1:${broker.port}`);
      // Failed logins: a wrong password whose text contains the canary, and an unknown user with it.
      for (const url of [`mqtt://courier:${canary}x@127.0.0.1:${broker.port}`, `mqtt://nobody:${canary}@127.0.0.1:${broker.port}`]) {
        const t = mqttTransport({ url, connectTimeoutMs: 1500, reconnect: { minMs: 300, maxMs: 300 } });
        t.on('error', (e) => seen.push(`${e.name}: ${e.message} ${String(e.cause ?? '')} ${e.stack ?? ''}`));
        const err = await t.connect().catch((e: Error) => e);
        assert.ok(err instanceof ConnectionError, `failed login rejects (${err})`);
        seen.push(`${err.message} ${err.stack}`, JSON.stringify(err), String(err.cause ?? ''));
        await t.close({ timeoutMs: 500 });
      }
      // A good login through the bus with the console logger: a dead letter and a retry warning.
      const dead: string[] = [];
      const sub = countedBus(fixture, undefined, {}, { logger: consoleLogger });
      sub.transport.on('error', (e) => seen.push(`${e.message} ${e.stack}`));
      sub.bus.on('deadLetter', (e) => seen.push(JSON.stringify(e)));
      sub.bus.register(tickSubscriber(uniq('g'), () => { throw new Error(`failing with url mqtt://courier:${canary}@host`); }, { attempts: 2 }));
      const raw = await (require('mqtt') as typeof import('mqtt')).connectAsync(broker.url, { protocolVersion: 5, username: 'courier', password: canary });
      raw.on('message', (topic, payload, packet) => dead.push(topic + payload.toString() + JSON.stringify(packet.properties ?? {})));
      await raw.subscribeAsync('courier/dead/#', { qos: 1 });
      await sub.bus.start();
      await sub.bus.publish(Tick, { n: 1 });
      await waitFor(() => dead.length === 1, 5000, 'the dead letter');
      await raw.endAsync();
      await sub.bus.stop();
      await fixture.purge();
      seen.push(...dead);
      const leaks = seen.filter((s) => s.includes(canary));
      console.log(`      [mqtt canary] ${seen.length} log lines, errors, events and dead-letter headers checked; canary found in ${leaks.length}`);
      assert.deepEqual(leaks, []);
      assert.ok(seen.some((s) => /courierdeadmessage/.test(s)), 'the dead letter was checked');
    } finally {
      Object.assign(console, original);
      await broker.dispose();
    }
  });

  it('12. ACL denials: a denied publish rejects with PublishRejectedError, the connection survives; a denied subscription is typed only if the broker refuses it', async () => {
    const broker = new MqttBroker({
      persistence: false,
      acl: ['topic readwrite courier/rel/mqtt/tick', 'topic readwrite courier/_retry/#', 'topic readwrite courier/_reply/#', 'topic readwrite courier/dead/#', ''].join('\n'),
    });
    await broker.start();
    const fixture = new MqttFixture(broker.url);
    try {
      const got: number[] = [];
      const ok = countedBus(fixture, undefined);
      ok.bus.register(tickSubscriber(uniq('g'), (t) => void got.push(t.n)));
      await ok.bus.start();
      const err = await ok.bus.publish(Secret, { n: 1 }).catch((e: Error) => e);
      assert.ok(err instanceof PublishRejectedError, `denied publish: ${err}`);
      assert.match(err.message, /0x87/);
      await ok.bus.publish(Tick, { n: 7 });
      await waitFor(() => got.includes(7), 5000, 'an allowed message on the same connection');

      @Subscriber({ group: uniq('g') })
      class Spy {
        @Subscribe(Secret)
        async on(): Promise<void> {}
      }
      const denied = createBus({ transport: fixture.create(), source: 'spy', logger: { warn: () => undefined, error: () => undefined } });
      denied.register(new Spy());
      const subErr = await denied.start().catch((e: Error) => e);
      // What the broker itself answers to that SUBSCRIBE: Mosquitto 2.0.11 grants a subscription
      // its ACL denies (SUBACK QoS 1) and then delivers nothing, so there is no error to type.
      const raw = await (require('mqtt') as typeof import('mqtt')).connectAsync(broker.url, { protocolVersion: 5 });
      const granted = await raw.subscribeAsync('courier/rel/mqtt/secret', { qos: 1 });
      await raw.endAsync();
      const code = granted[0].qos;
      console.log(`      [mqtt acl] publish: ${err.name} (${err.message}); subscribe: broker SUBACK 0x${code.toString(16)}, start(): ${subErr ? (subErr as Error).name : 'resolved'}`);
      if (code >= 0x80) assert.ok(subErr instanceof AccessRefusedError, `denied subscription: ${subErr}`);
      else assert.equal(subErr, undefined, 'a granted subscription starts (the broker reports no denial)');
      await denied.stop({ timeoutMs: 500 });
      await ok.bus.stop();
    } finally {
      await fixture.purge();
      await broker.dispose();
    }
  });
});

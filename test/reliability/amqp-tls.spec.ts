/**
 * Issue 3 point 9 and issue 7 point 10, for RabbitMQ: TLS with a CA and certificates this spec
 * generates with openssl. Two RabbitMQ containers of its own (never the shared broker), each with a
 * TLS listener on 5671 (`ssl_options.verify = verify_none`, no client certificate asked for):
 *   - one serving a certificate for localhost / 127.0.0.1 (subjectAltName), signed by the CA;
 *   - one serving a certificate for another host name (wrong.courier.test), signed by the same CA.
 * With Courier's amqpTransport over amqps://:
 *   - with the CA: connects, and one message is published (confirmed) and consumed;
 *   - without the CA: refused, ConnectionError (certificate verification is on by default);
 *   - the wrong-host certificate, with the CA: refused, ConnectionError (and, as a control, accepted
 *     when `tls.servername` names its host: so it is the host name that failed, not the chain);
 * and no error text (message, stack, causes, inspect) contains the password, which is a canary
 * (`default_pass` of the container's broker).
 *
 * Registration follows test/containers/container-faults.spec.ts: no engine and
 * COURIER_REQUIRE_CONTAINERS unset -> not registered (a console line says why); no engine and
 * COURIER_REQUIRE_CONTAINERS set -> one failing test saying why. Every wait is bounded; the
 * containers are removed in after(), also when a test failed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { AmqpTransport, amqpTransport } from '../../adapters/amqp';
import type { AmqpTransportOptions } from '../../adapters/amqp';
import { ConnectionError } from '../../lib/errors';
import { Headers, SubscriptionSpec } from '../../lib/transport';
import { amqpContainer, containerEngineSync, containersRequired, type BrokerContainer } from '../helpers/brokers';
import { uniq, waitFor } from '../helpers/wait';

const engine = containerEngineSync();
const USER = 'courier_tls';
const CANARY = `tlsCanary${randomBytes(8).toString('hex')}`;

interface Pki {
  dir: string;
  ca: string;
  good: { cert: string; key: string };
  wrong: { cert: string; key: string };
}

/** A CA, a server certificate for localhost/127.0.0.1 and one for wrong.courier.test, in a temp dir. */
function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-amqp-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Courier Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const server = (name: string, san: string) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${san.split(',')[0].split(':')[1]}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
    return { cert: fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8'), key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') };
  };
  const good = server('localhost', 'DNS:localhost,IP:127.0.0.1');
  const wrong = server('wrong', 'DNS:wrong.courier.test');
  return { dir, ca: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), good, wrong };
}

/** A RabbitMQ container with a TLS listener on 5671 serving `server`, and the canary user. */
function tlsBroker(pki: Pki, server: { cert: string; key: string }): Promise<BrokerContainer> {
  const conf = [
    'loopback_users = none',
    'listeners.tcp.default = 5672', // the fixture's readiness probe speaks plain AMQP
    'listeners.ssl.default = 5671',
    'ssl_options.cacertfile = /etc/rabbitmq/tls/ca.pem',
    'ssl_options.certfile = /etc/rabbitmq/tls/server.pem',
    'ssl_options.keyfile = /etc/rabbitmq/tls/server.key',
    'ssl_options.verify = verify_none',
    'ssl_options.fail_if_no_peer_cert = false',
    `default_user = ${USER}`,
    `default_pass = ${CANARY}`,
    'log.console = true',
    'log.console.level = info',
    '',
  ].join('\n');
  return amqpContainer({
    files: [
      { target: '/etc/rabbitmq/rabbitmq.conf', content: conf },
      { target: '/etc/rabbitmq/tls/ca.pem', content: pki.ca },
      { target: '/etc/rabbitmq/tls/server.pem', content: server.cert },
      { target: '/etc/rabbitmq/tls/server.key', content: server.key },
    ],
    extraPorts: [5671],
  });
}

function amqpsUrl(c: BrokerContainer): string {
  return `amqps://${USER}:${CANARY}@127.0.0.1:${c.extraPorts[5671]}`;
}

/** Everything a user could print of an error: message, stack, causes, inspect(). */
function texts(value: unknown): string[] {
  const out = [inspect(value, { depth: 6 })];
  let e: unknown = value;
  for (let i = 0; e instanceof Error && i < 6; i++, e = (e as Error & { cause?: unknown }).cause) out.push(e.message, String(e.stack));
  return out;
}

if (!engine.ok && containersRequired()) {
  describe('reliability, AMQP: TLS', () => {
    it('needs a Docker-compatible engine (COURIER_REQUIRE_CONTAINERS is set)', () => {
      throw new Error(`No container engine answers: ${engine.where}. Run scripts/container-engine.sh and export DOCKER_HOST.`);
    });
  });
} else if (!engine.ok) {
  console.log(
    `[amqp-tls] NOT REGISTERED: no Docker-compatible engine answers (${engine.where}). ` +
      'Run scripts/container-engine.sh (or start Docker) to run the RabbitMQ TLS tests; CI sets COURIER_REQUIRE_CONTAINERS=1 and fails instead.',
  );
} else {
  describe(`reliability, AMQP: TLS on RabbitMQ containers of its own (engine ${engine.where})`, function () {
    this.timeout(60_000);
    let pki: Pki | undefined;
    let good: BrokerContainer | undefined;
    let wrong: BrokerContainer | undefined;
    const open: AmqpTransport[] = [];
    const seen: string[] = []; // every error text and event detail: none may contain the canary

    before(async function () {
      this.timeout(240_000);
      pki = makePki();
      const t0 = Date.now();
      // Both at once; if one fails the other is still kept for after() to remove.
      const [a, b] = await Promise.allSettled([tlsBroker(pki, pki.good), tlsBroker(pki, pki.wrong)]);
      if (a.status === 'fulfilled') good = a.value;
      if (b.status === 'fulfilled') wrong = b.value;
      if (a.status === 'rejected') throw a.reason;
      if (b.status === 'rejected') throw b.reason;
      console.log(`      two TLS RabbitMQ containers ready in ${Date.now() - t0} ms (ports ${good!.extraPorts[5671]}, ${wrong!.extraPorts[5671]})`);
    });

    afterEach(async function () {
      this.timeout(15_000);
      await Promise.all(open.splice(0).map((t) => t.close({ timeoutMs: 1000 }).catch(() => undefined)));
    });

    after(async function () {
      this.timeout(60_000);
      await Promise.all([good?.dispose(), wrong?.dispose()].map((p) => p?.catch((e: Error) => console.warn(`      dispose: ${e.message}`))));
      if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
    });

    function transport(url: string, tls: AmqpTransportOptions['tls']): AmqpTransport {
      const t = amqpTransport({ url, tls, connectAttempts: 1, connectTimeoutMs: 5000, publishTimeoutMs: 5000 });
      t.on('error', (e) => seen.push(...texts(e)));
      t.on('disconnected', (e) => seen.push(...texts(e)));
      open.push(t);
      return t;
    }

    async function refusal(t: AmqpTransport): Promise<ConnectionError> {
      const err = await t.connect().then(
        () => assert.fail('the TLS connection should be refused'),
        (e: unknown) => e,
      );
      seen.push(...texts(err));
      assert.ok(err instanceof ConnectionError, `a ConnectionError, got ${inspect(err)}`);
      return err;
    }

    it('amqps:// with the CA: connects, publishes with a confirm and consumes one message', async () => {
      const t = transport(amqpsUrl(good!), { ca: pki!.ca });
      const topic = uniq('amqp.tls.');
      const spec: SubscriptionSpec = { pattern: topic, group: uniq('tls'), name: 'handler', prefetch: 1 };
      const got: string[] = [];
      await t.subscribe(spec, async (d) => {
        got.push(d.body.toString());
        await d.ack();
      });
      await t.connect();
      await t.publish({
        topic,
        body: Buffer.from('{"over":"tls"}'),
        headers: { [Headers.id]: uniq('id'), [Headers.type]: topic, [Headers.source]: 'amqp-tls.spec', [Headers.specversion]: '1.0', [Headers.datacontenttype]: 'application/json' },
      });
      await waitFor(() => got.length === 1, 10_000, 'the message over TLS');
      assert.deepEqual(got, ['{"over":"tls"}']);
    });

    it('without the CA: refused with ConnectionError (verification is on by default), password not in the error', async () => {
      const err = await refusal(transport(amqpsUrl(good!), undefined));
      console.log(`      no CA: ${err.name}: ${err.message}`);
      assert.match(err.message, /certificate/i);
      assert.match(err.message, /\*\*\*/, 'the URL is shown redacted');
    });

    it('a certificate for another host name, with the CA: refused with ConnectionError, password not in the error', async () => {
      const err = await refusal(transport(amqpsUrl(wrong!), { ca: pki!.ca }));
      console.log(`      wrong host: ${err.name}: ${err.message}`);
      assert.match(err.message, /altnames|not in the cert|host/i);
    });

    it('control: the same wrong-host certificate is accepted when the name asked for is its own (only the host name failed)', async () => {
      const t = transport(amqpsUrl(wrong!), { ca: pki!.ca, servername: 'wrong.courier.test' });
      await t.connect();
    });

    it('the canary password appears in no error text or event seen above', () => {
      assert.ok(seen.length >= 4, `error texts were collected (${seen.length})`);
      const leaks = seen.filter((s) => s.includes(CANARY));
      console.log(`      canary checked in ${seen.length} error texts: ${leaks.length} leaks`);
      assert.deepEqual(leaks, []);
    });
  });
}

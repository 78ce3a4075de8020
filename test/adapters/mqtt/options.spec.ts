/**
 * The MQTT adapter's options (adapters/mqtt/mqtt-options.ts): defaults in one place, and every
 * invalid option reported at construction, all at once, as a StartupError; never at first use.
 */
import assert from 'node:assert/strict';
import { StartupError } from '../../../lib/errors';
import { mqttTransport, MqttTransportOptions } from '../../../adapters/mqtt';
import { resolveMqttOptions } from '../../../adapters/mqtt/mqtt-options';

const url = 'mqtt://127.0.0.1:1';

describe('mqtt options (no broker)', () => {
  it('defaults', () => {
    const r = resolveMqttOptions({ url });
    assert.deepEqual(
      { ...r, tls: undefined },
      {
        urls: [url],
        version: 5,
        prefix: 'courier',
        qos: 1,
        publishTimeoutMs: 10_000,
        maxInFlight: 1000,
        maxOffline: 10_000,
        sessionExpirySeconds: 7 * 24 * 3600,
        reconnect: { minMs: 250, maxMs: 15_000 },
        connectTimeoutMs: 15_000,
        startTimeoutMs: 30_000,
        maxMessageBytes: 268_435_455 - 65_536,
        keepaliveSeconds: 30,
        noSubscribers: { graceMs: 5000, intervalMs: 100 },
        username: undefined,
        password: undefined,
        tls: undefined,
      },
    );
    assert.equal(resolveMqttOptions({ url, protocolVersion: 4 }).noSubscribers, undefined, '3.1.1 has no reason codes');
    assert.equal(resolveMqttOptions({ url, noSubscribersRetry: false }).noSubscribers, undefined);
    assert.deepEqual(resolveMqttOptions({ url: [url, 'mqtts://b:8883', 'ws://c/mqtt'] }).urls, [url, 'mqtts://b:8883', 'ws://c/mqtt']);
  });

  it('every invalid option at once, as a StartupError, from mqttTransport() itself', () => {
    const bad = {
      url: ['http://x', 'mqtt://user:s3cret@'],
      protocolVersion: 3,
      prefix: 'a/#',
      qos: 3,
      clientId: '',
      groupClientId: 'nope',
      publishTimeoutMs: 0,
      maxInFlight: 1.5,
      maxOffline: -1,
      sessionExpirySeconds: -1,
      reconnect: { minMs: 500, maxMs: 100 },
      connectTimeoutMs: Number.NaN,
      startTimeoutMs: -5,
      maxMessageBytes: 300_000_000,
      keepaliveSeconds: 70_000,
      tls: { rejectUnauthorized: 'no' },
      noSubscribersRetry: 'yes',
    } as unknown as MqttTransportOptions;
    const err = (() => {
      try {
        mqttTransport(bad);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof StartupError, `got ${String(err)}`);
    assert.equal(err.code, 'STARTUP_INVALID');
    const named = ['url must start', 'not a valid URL', 'protocolVersion', 'prefix', 'qos', 'clientId', 'groupClientId', 'publishTimeoutMs', 'maxInFlight',
      'maxOffline', 'sessionExpirySeconds', 'reconnect.maxMs', 'connectTimeoutMs', 'startTimeoutMs', 'maxMessageBytes', 'keepaliveSeconds',
      'tls.rejectUnauthorized', 'noSubscribersRetry'];
    for (const n of named) assert.ok(err.problems.some((p) => p.includes(n)), `no problem names ${n}: ${err.problems.join('; ')}`);
    assert.equal(err.problems.length, named.length, err.problems.join('\n'));
    assert.doesNotMatch(err.message, /s3cret/, 'a password in a URL never appears in the error');
  });

  it('no url: a StartupError', () => {
    assert.throws(() => mqttTransport({ url: [] }), (e: unknown) => e instanceof StartupError && /at least one url/.test(e.message));
  });
});

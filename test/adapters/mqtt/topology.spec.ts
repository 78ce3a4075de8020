/**
 * The MQTT adapter's topology as data (adapters/mqtt/mqtt-topology.ts): which client ids, session
 * kinds and filters a subscription and the publisher use. Pure functions: no broker. The wire
 * names are those of docs/wire-format.md ("MQTT binding"); a change here is a wire change.
 */
import assert from 'node:assert/strict';
import { SubscriptionSpec } from '../../../lib/transport';
import { UnstableClientIdError } from '../../../adapters/mqtt';
import { ClientIdPolicy } from '../../../adapters/mqtt/client-id-policy';
import { ClientIdRules, deadLetterTopic, publisherTopology, retryCopyTopic, subscriptionTopology } from '../../../adapters/mqtt/mqtt-topology';

/** Deterministic ids: a member is `m:<group>:<name>`, a transient id `t:<kind>`. */
const ids: ClientIdRules = { member: (g, n) => `m:${g}:${n}`, transient: (k) => `t:${k}` };
const env = { prefix: 'courier', ids };
const spec = (s: Partial<SubscriptionSpec>): SubscriptionSpec => ({ pattern: 'order.placed', name: 'h', prefetch: 7, ...s }) as SubscriptionSpec;

describe('mqtt topology (no broker)', () => {
  it('a group subscription: persistent member session, shared subscription, a retry session, a held dead-letter session', () => {
    const t = subscriptionTopology(spec({ group: 'billing' }), false, env);
    assert.equal(t.queueName, 'billing/h');
    assert.equal(t.retryTopic, 'courier/_retry/billing:h');
    assert.equal(t.exact, true);
    assert.deepEqual(t.feeds, [
      { clientId: 'm:billing:h', clean: false, filters: ['$share/billing:h/courier/order/placed'], receiveMaximum: 7, expirySeconds: undefined },
      { clientId: 'm:billing:h:retry', clean: false, filters: ['$share/billing:h/courier/_retry/billing:h/#'], expirySeconds: undefined },
    ]);
    assert.deepEqual(t.deadSession, { clientId: 'm:billing:h:dead', filter: '$share/billing:h:dead/courier/dead/order/placed' });
  });

  it("a group's dead-letter consumer: its own share and session, on the dead topics, and no held session of its own", () => {
    const t = subscriptionTopology(spec({ group: 'billing', pattern: 'order.*' }), true, env);
    assert.equal(t.queueName, 'billing/h');
    assert.equal(t.retryTopic, 'courier/_retry/billing:h:dead');
    assert.equal(t.feeds[0].clientId, 'm:billing:h:dead');
    assert.deepEqual(t.feeds[0].filters, ['$share/billing:h:dead/courier/dead/order/+']);
    assert.equal(t.feeds[1].clientId, 'm:billing:h:dead:retry');
    assert.equal(t.deadSession, undefined);
  });

  it('an instance subscription: a persistent plain subscription named after the instance, expiring after its grace (whole seconds, rounded up)', () => {
    const t = subscriptionTopology(spec({ instance: 'svc.i-1', expiresAfterMs: 1500 }), false, env);
    assert.equal(t.queueName, 'h');
    assert.deepEqual(t.feeds.map((f) => [f.clientId, f.clean, f.filters, f.expirySeconds]), [
      ['courier:instance:svc.i-1:h', false, ['courier/order/placed'], 2],
      ['courier:instance:svc.i-1:h:retry', false, ['courier/_retry/courier:instance:svc.i-1:h/#'], 2],
    ]);
    assert.equal(t.deadSession, undefined);
  });

  it('a plain broadcast: clean sessions with transient ids', () => {
    const t = subscriptionTopology(spec({}), false, env);
    assert.deepEqual(t.feeds.map((f) => [f.clientId, f.clean]), [['t:bc', true], ['t:bc:retry', true]]);
    assert.equal(t.retryTopic, 'courier/_retry/t:bc');
    assert.equal(subscriptionTopology(spec({}), true, env).feeds[0].clientId, 't:bcdead');
  });

  it('patterns: * is +, a trailing # stays, a leading or middle # widens the filter and marks it inexact; names are made safe levels', () => {
    const f = (pattern: string) => subscriptionTopology(spec({ pattern, group: 'g 1', name: 'a/b' }), false, { prefix: 'p', ids });
    assert.deepEqual(f('order.*').feeds[0].filters, ['$share/g_1:a_b/p/order/+']);
    assert.deepEqual(f('order.#').feeds[0].filters, ['$share/g_1:a_b/p/order/#']);
    assert.equal(f('order.#').exact, true);
    assert.deepEqual(f('#.placed').feeds[0].filters, ['$share/g_1:a_b/p/#']);
    assert.equal(f('#.placed').exact, false);
  });

  it('the publisher: a transient id, its reply topic, a clean session unless QoS 2 under MQTT 5 (then expiring after twice the publish timeout, at least 60 s)', () => {
    const base = { prefix: 'courier', qos: 1 as const, version: 5 as const, publishTimeoutMs: 10_000 };
    assert.deepEqual(publisherTopology(base, ids), { clientId: 't:pub', replyTopic: 'courier/_reply/t:pub', clean: true, expirySeconds: 60 });
    assert.equal(publisherTopology({ ...base, qos: 2 }, ids).clean, false);
    assert.equal(publisherTopology({ ...base, qos: 2, version: 4 }, ids).clean, true);
    assert.equal(publisherTopology({ ...base, publishTimeoutMs: 45_500 }, ids).expirySeconds, 92);
  });

  it('dead-letter and retry copy topics', () => {
    assert.equal(deadLetterTopic('courier', 'order.placed'), 'courier/dead/order/placed');
    assert.equal(retryCopyTopic('courier/_retry/g:h', 'order.placed'), 'courier/_retry/g:h/order/placed');
  });

  it('with the real ClientIdPolicy: a group member needs a stable id, and gets `<clientId>:<group>:<name>`', () => {
    assert.throws(() => subscriptionTopology(spec({ group: 'g' }), false, { prefix: 'courier', ids: new ClientIdPolicy({}) }), UnstableClientIdError);
    const t = subscriptionTopology(spec({ group: 'g' }), false, { prefix: 'courier', ids: new ClientIdPolicy({ clientId: 'svc-0' }) });
    assert.equal(t.feeds[0].clientId, 'svc-0:g:h');
  });
});

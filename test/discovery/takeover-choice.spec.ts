/**
 * Who takes over an expired member's group sessions (lib/discovery/takeover.ts), and the
 * `sessions` field of an announcement (lib/discovery/presence.ts). Pure functions, no broker; the
 * take-over itself on Mosquitto is test/discovery/mqtt-takeover.spec.ts.
 */
import assert from 'node:assert/strict';
import { MalformedMessageError } from '../../lib';
import { parseAnnouncement, PresenceAnnouncement } from '../../lib/discovery/presence';
import { sessionsToTakeOver } from '../../lib/discovery/takeover';

const base = { nonce: 'n', version: '', handles: [], publishes: [], weight: 1, direct: true, heartbeatMs: 200, ttlMs: 1000, startedAt: '', metadata: {} };
const member = (service: string, instanceId: string, groups: string[], transport = 'mqtt'): PresenceAnnouncement => ({
  ...base,
  service,
  instanceId,
  transport,
  sessions: groups.map((g) => ({ group: g, name: 'W.on', clientId: `${service}-${instanceId}:${g}:W.on` })),
});

describe('discovery: the choice of who takes over an expired member\'s sessions', () => {
  const gone = member('svc', 'b', ['g1', 'g2']);
  const a = member('svc', 'a', ['g1']);
  const c = member('svc', 'c', ['g1', 'g2']);
  const live = [a, c];

  it('each session goes to exactly one live holder of the same group and name: the first by service/instanceId', () => {
    assert.deepEqual(sessionsToTakeOver(gone, live, a).map((s) => s.group), ['g1']);
    assert.deepEqual(sessionsToTakeOver(gone, live, c).map((s) => s.group), ['g2']);
    for (const s of gone.sessions!) {
      const takers = live.filter((self) => sessionsToTakeOver(gone, live, self).some((x) => x.group === s.group));
      assert.equal(takers.length, 1, s.group);
    }
  });

  it('nobody takes over across transports, a member with no sessions, or a session nobody else holds', () => {
    assert.deepEqual(sessionsToTakeOver(gone, [member('svc', 'a', ['g1'], 'amqp')], member('svc', 'a', ['g1'], 'amqp')), []);
    assert.deepEqual(sessionsToTakeOver({ ...gone, sessions: undefined }, live, a), []);
    assert.deepEqual(sessionsToTakeOver(member('svc', 'b', ['g9']), live, a), []);
  });

  it('announcements: sessions are optional, and malformed ones are refused', () => {
    const wire = { ...member('svc', 'a', ['g1']) };
    assert.deepEqual(parseAnnouncement(JSON.parse(JSON.stringify(wire))).sessions, wire.sessions);
    assert.equal(parseAnnouncement({ ...wire, sessions: undefined }).sessions, undefined);
    for (const bad of [1, [{ group: 'g' }], [{ group: 'g', name: 'n', clientId: 3 }], ['x']]) {
      assert.throws(() => parseAnnouncement({ ...wire, sessions: bad }), MalformedMessageError);
    }
  });
});

/**
 * Issue 14, point 12: a group subscription on MQTT never starts under a generated client id
 * unless the user opted in. (The loss a changing id causes is shown in
 * test/reliability/mqtt-process.spec.ts.)
 */
import assert from 'node:assert/strict';
import { UnstableClientIdError, mqttTransport } from '../../../adapters/mqtt';
import { uniq } from '../../helpers/wait';

const url = 'mqtt://127.0.0.1:1'; // never connected: the rule is checked at subscribe
const spec = () => ({ pattern: uniq('cid.'), group: uniq('g'), name: 'h', prefetch: 1 });
const handler = async () => undefined;

describe('mqtt client id policy', () => {
  it('a group subscription without clientId or groupClientId rejects with UnstableClientIdError saying how to set one', async () => {
    const t = mqttTransport({ url });
    const s = spec();
    const err = await t.subscribe(s, handler).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof UnstableClientIdError, `got ${String(err)}`);
    assert.equal(err.group, s.group);
    assert.match(err.message, /`clientId`/);
    assert.match(err.message, /allowGeneratedClientId: true/);
    await assert.rejects(t.subscribeDeadLetters(s, handler), UnstableClientIdError);
    await t.close();
  });

  it('a stable clientId, a groupClientId, or the opt-in lets it start; broadcasts never need one', async () => {
    for (const o of [{ clientId: uniq('stable') }, { groupClientId: () => uniq('member') }, { allowGeneratedClientId: true }, {}]) {
      const t = mqttTransport({ url, ...o });
      const s = Object.keys(o).length ? spec() : { ...spec(), group: undefined };
      await t.subscribe(s, handler);
      await t.close();
    }
  });
});

/**
 * Taking over a gone group member's persistent session (lib/session-takeover.ts; issue 22,
 * point 3). Mosquitto keeps a member's share of a shared subscription in its session while it is
 * away (what it held unacked, and what was round-robined to it since); only its client id gets it
 * back. When the registry says a member expired, one live member connects under that client id
 * (persistent session, so the broker hands over what it holds), unsubscribes at once so the broker
 * gives the session no new work, hands every message through its own subscription of the same
 * group and name (the same handler, validation and failure policy: retry copies go to the group's
 * retry topic, dead letters to the group's dead-letter topic), and once nothing has been pending
 * for `quietMs` disconnects and deletes the session (a clean start under that id, no session
 * expiry). The retry session (`<id>:retry`) is drained and deleted the same way; the dead-letter
 * session (`<id>:dead`) is left alone: it holds that member's dead letters for a reader.
 *
 * A member that returns meanwhile takes its session back (the broker closes the taker's
 * connection): the take-over stops there (`returned`) without reconnecting, and what was unacked
 * goes back to the member (duplicates possible, no loss). Nothing else in the adapter knows of this.
 */
import type { MqttClient } from 'mqtt';
import { SafeEmitter } from '../../lib/adapter-kit';
import { CourierError, SessionTakenOverError } from '../../lib/errors';
import type { TransportEvents } from '../../lib/transport';
import type { HeldSession, TakeoverOptions, TakeoverResult } from '../../lib/session-takeover';
import { ClientIdPolicy } from './client-id-policy';
import { MqttConnection } from './mqtt-connection';
import { MqttSubscription, SubscriptionDeps } from './mqtt-subscription';
import { subscriptionTopology } from './mqtt-topology';

/** Client id rules that name another member's session instead of this transport's own. */
class OtherMember extends ClientIdPolicy {
  constructor(own: ClientIdPolicy, private readonly id: string) {
    super({ clientId: own.base });
  }

  override member(): string {
    return this.id;
  }
}

const POLL_MS = 25;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class MqttTakeovers {
  private readonly running = new Set<Promise<TakeoverResult>>();
  private closed = false;

  constructor(
    private readonly deps: SubscriptionDeps,
    /** The transport's own subscriptions. */
    private readonly own: () => Iterable<MqttSubscription>,
  ) {}

  /** The persistent sessions of this transport's group subscriptions. */
  held(): HeldSession[] {
    const out: HeldSession[] = [];
    for (const s of this.own()) {
      const { group, name } = s.spec;
      if (s.dead || !group) continue;
      try {
        out.push({ group, name, clientId: this.deps.ctx.clientIds.member(group, name) });
      } catch {
        // No stable id: the subscription itself rejects with UnstableClientIdError.
      }
    }
    return out;
  }

  takeOver(session: HeldSession, options: TakeoverOptions = {}): Promise<TakeoverResult> {
    const run = this.run(session, options);
    this.running.add(run);
    void run.finally(() => this.running.delete(run)).catch(() => undefined);
    return run;
  }

  /** Stops every take-over (their sessions are left as they are) and waits for them, bounded. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    await Promise.race([Promise.allSettled([...this.running]), sleep(timeoutMs)]);
  }

  private async run(session: HeldSession, options: TakeoverOptions): Promise<TakeoverResult> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const quietMs = options.quietMs ?? 1000;
    const deadline = Date.now() + timeoutMs;
    if (this.held().some((h) => h.clientId === session.clientId)) throw new CourierError(`MQTT session ${session.clientId} is this transport's own`);
    const mine = [...this.own()].find((s) => !s.dead && s.spec.group === session.group && s.spec.name === session.name);
    if (this.closed) return { session, handled: 0, outcome: 'closed' };
    if (!mine) return { session, handled: 0, outcome: 'no-subscription' };

    // Its own events: its connections coming and going are not the transport's (bus.health()
    // would count a taken-back connection as down for good); errors go on, except the expected
    // one of a member taking its session back.
    const events = new SafeEmitter<TransportEvents>();
    events.on('error', (err) => !(err instanceof SessionTakenOverError) && this.deps.ctx.events.emit('error', err));
    const ctx = { ...this.deps.ctx, events, clientIds: new OtherMember(this.deps.ctx.clientIds, session.clientId) };
    const topology = subscriptionTopology(mine.spec, false, { prefix: ctx.options.prefix, ids: ctx.clientIds });
    let handled = 0;
    const sub = new MqttSubscription({ ...this.deps, ctx, readsDeadLetters: () => true }, mine.spec, (d) => {
      handled++;
      return mine.handler(d);
    }, false);
    let cut = false;
    let ending = false;
    try {
      await sub.start();
      const clients = sub.feeds.map((f) => f.client!);
      for (const c of clients) {
        c.on('close', () => {
          if (ending || cut) return;
          // Taken back by the member (or cut): never reconnect under its id and fight it.
          cut = true;
          sub.stop(true);
        });
      }
      await Promise.all(clients.map((c, i) => unsubscribe(c, topology.feeds[i].filters, Math.max(1, deadline - Date.now()))));
      let quietSince = Date.now();
      while (!cut && !this.closed && Date.now() < deadline) {
        if (sub.pending > 0) quietSince = Date.now();
        else if (Date.now() - quietSince >= quietMs) break;
        await sleep(POLL_MS);
      }
      if (cut) return { session, handled, outcome: 'returned' };
      const drained = sub.pending === 0 && !this.closed && Date.now() < deadline;
      ending = true;
      await sub.close(Math.max(1000, deadline - Date.now()));
      if (!drained) return { session, handled, outcome: this.closed ? 'closed' : 'timeout' };
      // Delete the drained sessions: a clean start under each id, without a session expiry.
      for (const f of topology.feeds) {
        const conn = new MqttConnection(ctx, { clientId: f.clientId, clean: true, role: `take-over of ${f.clientId}` });
        try {
          await conn.start([]);
        } finally {
          await conn.end();
        }
      }
      return { session, handled, outcome: 'drained' };
    } catch (err) {
      ending = true;
      sub.stop(true);
      throw err;
    }
  }
}

function unsubscribe(client: MqttClient, filters: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CourierError(`MQTT UNSUBSCRIBE of ${filters.join(', ')} unanswered after ${timeoutMs} ms`)), timeoutMs);
    client.unsubscribe([...filters], (err) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    });
  });
}

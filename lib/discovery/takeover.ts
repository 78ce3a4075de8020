/**
 * Who takes over a gone member's group sessions (issue 22, point 3; docs/discovery.md). When an
 * instance expires (its TTL ran out: SIGKILL, power loss), the persistent group sessions it
 * announced would keep their share of the work until the same client id returns. Each session
 * goes to exactly one live instance: among those that announce a session of the same group and
 * name on the same transport, the first by `service/instanceId`. Every instance computes the same
 * choice from its own table; if two tables disagree the broker lets only one client hold the
 * session at a time, so the worst case is a message handled twice, never one lost.
 * The draining itself is the transport's (lib/session-takeover.ts).
 */
import type { HeldSession } from '../session-takeover';
import type { PresenceAnnouncement } from './presence';

const keyOf = (i: PresenceAnnouncement): string => `${i.service}/${i.instanceId}`;

/** The sessions of `gone` that `self` should take over, given the live instances (self included). */
export function sessionsToTakeOver(gone: PresenceAnnouncement, live: readonly PresenceAnnouncement[], self: PresenceAnnouncement): HeldSession[] {
  const out: HeldSession[] = [];
  if (gone.transport !== self.transport) return out;
  for (const s of gone.sessions ?? []) {
    const holders = live
      .filter((i) => i.transport === gone.transport && keyOf(i) !== keyOf(gone))
      .filter((i) => (i.sessions ?? []).some((h) => h.group === s.group && h.name === s.name && h.clientId !== s.clientId))
      .map(keyOf)
      .sort();
    if (holders[0] === keyOf(self)) out.push(s);
  }
  return out;
}

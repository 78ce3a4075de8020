/**
 * An optional transport capability: taking over the persistent group sessions of a member that is
 * gone for good (issue 22, point 3). On MQTT a group member's share of the work waits in its
 * persistent session until the same client id connects again; a member that never returns would
 * keep it forever. A transport that can, names the sessions each of its group subscriptions holds
 * (announced with the instance's presence), and drains another member's session through its own
 * subscription's handler when the registry says that member expired (lib/discovery/takeover.ts).
 *
 * Core code calls it only through {@link canTakeOverSessions}; no adapter imports lib/discovery.
 */

/** One persistent session of a group member, as its transport names it. */
export interface HeldSession {
  /** The subscription's group. */
  readonly group: string;
  /** The subscription's name (one queue per group and name). */
  readonly name: string;
  /** The broker's name of the session (MQTT: the client id). */
  readonly clientId: string;
}

/** How a take-over ended. */
export interface TakeoverResult {
  readonly session: HeldSession;
  /** Deliveries handed to the handler from the taken-over session. */
  readonly handled: number;
  /**
   * `drained`: emptied and deleted; `returned`: the member came back and took its session back, or
   * the connection was cut (the session is left as it is; what was unacked stays in it); `timeout`: not drained in time, the session was left as it was;
   * `no-subscription`: this transport has no subscription of that group and name; `closed`: this
   * transport closed meanwhile (the session was left as it was).
   */
  readonly outcome: 'drained' | 'returned' | 'timeout' | 'no-subscription' | 'closed';
}

/** Options of one take-over. */
export interface TakeoverOptions {
  /** Give up (leave the session) after this long. Default 60,000. */
  readonly timeoutMs?: number;
  /** Drained once nothing was pending for this long. Default 1,000. */
  readonly quietMs?: number;
}

/** The capability itself. */
export interface SessionTakeover {
  /** The persistent group sessions this transport's subscriptions hold now. */
  heldSessions(): readonly HeldSession[];
  /**
   * Connects as `session` (another member's), hands what it holds to this transport's own
   * subscription of the same group and name (same handler and failure policy), then deletes it.
   */
  takeOverSession(session: HeldSession, options?: TakeoverOptions): Promise<TakeoverResult>;
}

/** True when `transport` implements {@link SessionTakeover}. */
export function canTakeOverSessions(transport: unknown): transport is SessionTakeover {
  const t = transport as Partial<SessionTakeover> | null;
  return !!t && typeof t.heldSessions === 'function' && typeof t.takeOverSession === 'function';
}

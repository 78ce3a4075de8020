/**
 * The SQLite DDL of the outbox and inbox tables (docs/consistency.md prints the same). Times are
 * integer milliseconds since the epoch; headers are JSON text; the body a BLOB.
 */
import { StartupError } from '../../lib/errors';

export function checkName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new StartupError([`"${name}" is not a plain table name (letters, digits, _)`]);
  return `"${name}"`;
}

export function outboxDdl(table: string): string {
  const t = checkName(table);
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,   -- commit order (SQLite has one writer)
  id              TEXT    NOT NULL,                    -- the message's CloudEvents id
  topic           TEXT    NOT NULL,
  headers         TEXT    NOT NULL,                    -- JSON object
  body            BLOB    NOT NULL,
  ordering_key    TEXT,
  created_at      INTEGER NOT NULL,                    -- ms since the epoch
  state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner     TEXT,
  lease_until     INTEGER,
  last_error      TEXT,
  sent_at         INTEGER
);
CREATE INDEX IF NOT EXISTS "${table}_pending" ON ${t} (state, seq);
CREATE INDEX IF NOT EXISTS "${table}_pending_key" ON ${t} (ordering_key, state, seq);
`;
}

export function inboxDdl(table: string): string {
  const t = checkName(table);
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  consumer    TEXT    NOT NULL,
  message_id  TEXT    NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "${table}_received" ON ${t} (received_at);
`;
}

/**
 * The PostgreSQL DDL of the outbox and inbox tables (docs/consistency.md prints the same). The
 * stores' migrate() runs it; a user who manages the schema runs it, with the names replaced.
 */
import { StartupError } from '../../lib/errors';

/** `name` or `schema.name`, each part a plain identifier; returned quoted. */
export function qualifiedName(name: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(p))) {
    throw new StartupError([`"${name}" is not a plain table name ([schema.]name, letters, digits, _)`]);
  }
  return parts.map((p) => `"${p}"`).join('.');
}

/** The index/trigger name prefix for a table: its parts joined by `_`. */
export function baseName(name: string): string {
  return name.replace('.', '_');
}

/**
 * Prefixed to the DDL by the stores' migrate(): a transaction-scoped advisory lock per table, so
 * that processes migrating at the same moment run the DDL one after the other. Concurrent
 * `CREATE TABLE IF NOT EXISTS` of one table fails in all but one of them (a unique violation in
 * pg_type or pg_class, or "already exists": 34 of 80 concurrent migrations here). The DDL is sent
 * as one simple query, which PostgreSQL runs as one transaction, so the lock lasts until it ends.
 * Key space (7743, hashtext(name)): the two-key advisory locks do not overlap the one-key ones of
 * ordering keys.
 */
export function migrationLock(table: string): string {
  qualifiedName(table); // throws on anything but a plain name: `table` is safe inside the quotes
  return `SELECT pg_advisory_xact_lock(7743, hashtext('${table}'));\n`;
}

export function outboxDdl(table: string, channel: string): string {
  const t = qualifiedName(table);
  const b = baseName(table);
  // The trigger function lives in the table's schema (dropped with it).
  const f = table.includes('.') ? `"${table.split('.')[0]}"."${b}_notify"` : `"${b}_notify"`;
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  seq             bigserial   PRIMARY KEY,            -- commit order (per ordering key)
  id              text        NOT NULL,                -- the message's CloudEvents id
  topic           text        NOT NULL,
  headers         jsonb       NOT NULL,
  body            bytea       NOT NULL,
  ordering_key    text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts        integer     NOT NULL DEFAULT 0,      -- failed publishes so far
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_owner     text,
  lease_until     timestamptz,
  last_error      text,
  sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS "${b}_pending" ON ${t} (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS "${b}_pending_key" ON ${t} (ordering_key, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS "${b}_sent" ON ${t} (sent_at) WHERE state = 'sent';
CREATE OR REPLACE FUNCTION ${f}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('${channel}', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS "${b}_notify" ON ${t};
CREATE TRIGGER "${b}_notify" AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${f}();
`;
}

export function inboxDdl(table: string): string {
  const t = qualifiedName(table);
  const b = baseName(table);
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  consumer    text        NOT NULL,                    -- <group>.<Class.method>
  message_id  text        NOT NULL,                    -- the message's CloudEvents id
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS "${b}_received" ON ${t} (received_at);
`;
}

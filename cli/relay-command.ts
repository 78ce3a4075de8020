/**
 * `courier relay`: the outbox relay in a process of its own (runRelay from lib/outbox). Reads an
 * outbox table on PostgreSQL or SQLite and publishes its rows with the broker's confirms until
 * SIGTERM / SIGINT, then finishes the batch in flight, prints what it did and exits 0. Several
 * relays on one table are safe (leases; docs/consistency.md). The database and broker clients
 * (pg or better-sqlite3, amqplib or mqtt) load only when it runs.
 */
import type { OutboxStore } from '../lib';
import { BROKER_OPTIONS, BROKER_USAGE, BrokerChoice, brokerChoice, describeBroker, integerOption, makeTransport, parseCommandArgs, untilSignal } from './broker-options';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier relay --db URL|FILE --transport amqp|mqtt [options]

Publishes the committed rows of an outbox table (docs/consistency.md) until SIGTERM or Ctrl-C.

Options:
  --db URL|FILE              postgres://... (node-postgres), or a SQLite file (better-sqlite3)
  --table NAME               the outbox table, [schema.]name on PostgreSQL (default courier_outbox)
  --migrate                  create the table (and its trigger) if missing
  --batch-size N             rows per claim (default 100)
  --lease-ms MS              how long a claim holds its rows (default 30000)
  --max-attempts N           failed publishes of a row before it goes to dead (default 10)
  --help, -h                 this text
${BROKER_USAGE}
--transport is required here, amqp or mqtt (the broker to publish to).
Exit status: 0 when stopped by a signal, 1 when it failed, 2 for bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  db: { type: 'string' },
  table: { type: 'string' },
  migrate: { type: 'boolean' },
  'batch-size': { type: 'string' },
  'lease-ms': { type: 'string' },
  'max-attempts': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface RelayCommandOptions {
  readonly db: string;
  readonly table?: string;
  readonly migrate: boolean;
  readonly broker: BrokerChoice;
  readonly batchSize?: number;
  readonly leaseMs?: number;
  readonly maxAttempts?: number;
}

/** `courier relay`'s arguments as options, or `'help'`; throws {@link UsageError} for bad usage. */
export function parseArgs(rest: readonly string[]): RelayCommandOptions | 'help' {
  const { values } = parseCommandArgs(rest, OPTIONS, false);
  if (values.help) return 'help';
  if (!values.db) throw new UsageError('--db is required: postgres://... or a SQLite file');
  const transport = values.transport;
  if (transport !== 'amqp' && transport !== 'mqtt') throw new UsageError(`--transport must be amqp or mqtt${transport ? `, not "${transport}"` : ''}`);
  if (values.exchange !== undefined && transport !== 'amqp') throw new UsageError('--exchange needs --transport amqp');
  if (values.prefix !== undefined && transport !== 'mqtt') throw new UsageError('--prefix needs --transport mqtt');
  if (values.table !== undefined && !/^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$/.test(values.table)) throw new UsageError(`--table "${values.table}" is not a table name`);
  const optional = (name: 'batch-size' | 'lease-ms' | 'max-attempts', min: number, max: number) => (values[name] === undefined ? undefined : integerOption(values[name], name, 0, min, max));
  return {
    db: values.db,
    table: values.table,
    migrate: values.migrate === true,
    broker: brokerChoice(values),
    batchSize: optional('batch-size', 1, 10_000),
    leaseMs: optional('lease-ms', 100, 3_600_000),
    maxAttempts: optional('max-attempts', 1, 1000),
  };
}

const isPostgres = (db: string) => /^postgres(ql)?:\/\//.test(db);

/** Runs `courier relay`; resolves to the exit status when a signal stopped it. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const o: RelayCommandOptions = parsed.options;
  const { runRelay, redactSecrets } = await import('../lib');
  const signal = untilSignal();
  let close: () => Promise<void> = async () => undefined;
  try {
    const opened = await openStore(o);
    close = opened.close;
    if (o.migrate) await opened.store.migrate();
    // Publishing only: no subscription, so no persistent MQTT session and no stable client id.
    const transport = await makeTransport(o.broker, 'relay', { whileDisconnected: 'buffer' });
    const started = Date.now();
    const { relay, stop } = await runRelay({
      store: opened.store,
      transport,
      signals: [],
      ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
      ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
      ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
      logger: { warn: (m) => io.stderr.write(`[courier relay] ${m}\n`), error: (m) => io.stderr.write(`[courier relay] ${m}\n`) },
    });
    io.stderr.write(`courier relay ${relay.owner}: relaying ${opened.store.name} on ${opened.where} to ${describeBroker(o.broker)}; SIGTERM or Ctrl-C stops it\n`);
    const got = await signal.promise;
    await stop();
    const stats = await opened.store.stats();
    io.stdout.write(
      `courier relay ${relay.owner}: stopped by ${got} after ${((Date.now() - started) / 1000).toFixed(1)} s: ${relay.published} published; ` +
        `${stats.pending} pending, ${stats.dead} dead in ${opened.store.name}\n`,
    );
    return 0;
  } catch (err) {
    io.stderr.write(`courier relay failed: ${redactSecrets((err as Error).stack ?? String(err))}\n`);
    return 1;
  } finally {
    signal.dispose();
    await close().catch(() => undefined);
  }
}

async function openStore(o: RelayCommandOptions): Promise<{ store: OutboxStore; where: string; close: () => Promise<void> }> {
  if (isPostgres(o.db)) {
    const { Pool } = await import('pg');
    const { PgOutboxStore } = await import('../adapters/postgres');
    const pool = new Pool({ connectionString: o.db, max: 4 });
    pool.on('error', () => undefined);
    const u = new URL(o.db);
    return { store: new PgOutboxStore({ pool, table: o.table }), where: `postgres://${u.host}${u.pathname}`, close: () => pool.end() };
  }
  const BetterSqlite3 = (await import('better-sqlite3')).default;
  const { SqliteOutboxStore } = await import('../adapters/sqlite');
  // timeout 0: a busy file makes the relay try later rather than block (adapters/sqlite).
  const db = new BetterSqlite3(o.db, { timeout: 0, fileMustExist: !o.migrate });
  return { store: new SqliteOutboxStore({ db, table: o.table }), where: o.db, close: async () => void db.close() };
}

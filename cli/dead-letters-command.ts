/**
 * `courier dead-letters list|show|replay|purge`: the dead letters of one subscription (group and
 * handler), through lib/ops/dead-letters.ts.
 */
import { DeadLetter, DeadLetterFilter, DeadLetterSource, listDeadLetters, parseWhere, purgeDeadLetters, replayDeadLetters, ScanOptions, showDeadLetter } from '../lib/ops/dead-letters';
import { Headers } from '../lib/transport';
import { BROKER_OPTIONS, BROKER_USAGE, BrokerChoice, brokerChoice, describeBroker, integerOption, parseCommandArgs, reportFailure, withTransport } from './broker-options';
import { CommandIO, UsageError } from './command';
import { bodyValue, messageBlock, printableHeaders } from './format';

export const USAGE = `Usage: courier dead-letters list   --group G --handler Class.method [options]
       courier dead-letters show ID --group G --handler Class.method [options]
       courier dead-letters replay --group G --handler Class.method [options]
       courier dead-letters purge  --group G --handler Class.method --yes [options]

The dead letters of one subscription: the handler Class.method in group G (a service's group is its
source unless the handler names another). list prints them (none is removed); show prints one with
every header and its body; replay sends each back to that subscription alone, with its attempt count
reset to 1 and the header courierreplayed, and removes the dead letter only once the broker confirmed
the copy (an interrupted replay loses nothing; run it again); purge removes them for good.

Options:
  --group G                      the subscription's group
  --handler Class.method         the handler (its subscription name)
  --instance I                   instead of --group: an instance subscription (<source>.<instanceId>)
  --pattern P                    MQTT: the handler's pattern (default #)
  --where KEY=V[,V...]           only these: reason=exhausted,invalid  type=order.*  id=ID (repeatable: all must hold)
  --limit N                      read at most N dead letters (default 10000)
  --idle-ms N                    stop reading after N ms without a new one (default 500)
  --wait-ms N                    wait this long for the first one (default 2000)
  --rate N                       replay: at most N per second (default: no limit)
  --concurrency N                replay: copies in flight at once (default 16)
  --yes                          purge: confirm
  --json                         one JSON object per line
  --help, -h                     this text
${BROKER_USAGE}
On MQTT a group's dead letters wait in each member's session <clientId>:<group>:<handler>:dead:
give the member's --client-id (once per member). On AMQP they are the queue <group>.<handler>.dead.

Exit status: 0 done, 1 failed (a replay with copies the broker refused included), 2 bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  group: { type: 'string' },
  handler: { type: 'string' },
  instance: { type: 'string' },
  pattern: { type: 'string' },
  where: { type: 'string', multiple: true },
  limit: { type: 'string' },
  'idle-ms': { type: 'string' },
  'wait-ms': { type: 'string' },
  rate: { type: 'string' },
  concurrency: { type: 'string' },
  yes: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Action = 'list' | 'show' | 'replay' | 'purge';

interface Parsed {
  readonly action: Action;
  readonly id?: string;
  readonly source: DeadLetterSource;
  readonly where?: DeadLetterFilter;
  readonly scan: ScanOptions;
  readonly rate: number;
  readonly concurrency: number;
  readonly json: boolean;
  readonly broker: BrokerChoice;
}

function parse(args: readonly string[]): Parsed | 'help' {
  const { values, positionals } = parseCommandArgs(args, OPTIONS);
  if (values.help) return 'help';
  const [action, ...rest] = positionals;
  if (action !== 'list' && action !== 'show' && action !== 'replay' && action !== 'purge') throw new UsageError(action ? `unknown action "${action}": list, show, replay or purge` : 'no action given: list, show, replay or purge');
  if (action === 'show' ? rest.length !== 1 : rest.length !== 0) throw new UsageError(action === 'show' ? 'show takes one envelope id' : `${action} takes no argument besides the options`);
  const group = values.group as string | undefined;
  const instance = values.instance as string | undefined;
  const handler = values.handler as string | undefined;
  if (!handler) throw new UsageError('--handler Class.method is required');
  if (!group === !instance) throw new UsageError('give --group or --instance (one of them)');
  if (action === 'purge' && values.yes !== true) throw new UsageError('purge removes dead letters for good: add --yes');
  let where: DeadLetterFilter | undefined;
  try {
    where = values.where ? parseWhere(values.where as string[]) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const broker = brokerChoice(values);
  if (broker.transport === 'mqtt' && group && !broker.clientId) {
    throw new UsageError(`MQTT keeps the dead letters of ${group}/${handler} in each member's session <clientId>:${group}:${handler}:dead: give the member's --client-id`);
  }
  return {
    action,
    id: rest[0],
    source: { group, instance, name: handler, pattern: values.pattern as string | undefined },
    where,
    scan: {
      where,
      limit: integerOption(values.limit, 'limit', 10_000, 1, 65_000),
      idleMs: integerOption(values['idle-ms'], 'idle-ms', 500, 1, 600_000),
      firstWaitMs: integerOption(values['wait-ms'], 'wait-ms', 2000, 1, 600_000),
    },
    rate: integerOption(values.rate, 'rate', 0, 1, 1_000_000),
    concurrency: integerOption(values.concurrency, 'concurrency', 16, 1, 1000),
    json: values.json === true,
    broker,
  };
}

/** A dead letter as one JSON object (body parsed when it is JSON, headers redacted). */
function asJson(d: DeadLetter, withBody: boolean): Record<string, unknown> {
  return {
    id: d.id,
    type: d.type,
    source: d.source,
    time: d.time,
    attempt: d.attempt,
    reason: d.reason,
    error: d.errorName,
    message: d.errorMessage,
    subscription: d.subscription,
    deadAt: d.deadAt,
    replayedBefore: d.replayedBefore,
    ...(withBody ? { headers: printableHeaders(d.headers), body: bodyValue(d.body) } : {}),
  };
}

function line(d: DeadLetter): string {
  const why = [d.errorName, d.errorMessage].filter(Boolean).join(': ');
  return `${d.deadAt ?? '-'} ${d.reason ?? '-'} ${d.type} ${d.id ?? '-'} attempt ${d.attempt}${d.replayedBefore ? ' (replayed before)' : ''}${why ? `: ${why}` : ''}\n`;
}

/** Runs `courier dead-letters`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  let p: Parsed | 'help';
  try {
    p = parse(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier dead-letters: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (p === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const o = p;
  const what = `${o.source.group ?? o.source.instance}/${o.source.name}`;
  try {
    return await withTransport(o.broker, `dead-letters ${o.action}`, async (t) => {
      if (o.action === 'list') {
        const found = await listDeadLetters(t, o.source, { ...o.scan, onDeadLetter: (d) => io.stdout.write(o.json ? JSON.stringify(asJson(d, false)) + '\n' : line(d)) });
        io.stderr.write(`courier dead-letters: ${found.length} dead letter(s) of ${what}${o.where ? ' matching the filter' : ''} on ${describeBroker(o.broker)}\n`);
        return 0;
      }
      if (o.action === 'show') {
        const d = await showDeadLetter(t, o.source, o.id!, o.scan);
        if (!d) {
          io.stderr.write(`courier dead-letters: no dead letter ${o.id} of ${what}\n`);
          return 1;
        }
        io.stdout.write(o.json ? JSON.stringify(asJson(d, true)) + '\n' : line(d) + messageBlock('', d.headers, d.body, new Set([Headers.id])).slice(1));
        return 0;
      }
      if (o.action === 'replay') {
        const r = await replayDeadLetters(t, o.source, {
          ...o.scan,
          ratePerSecond: o.rate,
          concurrency: o.concurrency,
          onReplayed: (d) => o.json && io.stdout.write(JSON.stringify({ replayed: d.id, type: d.type }) + '\n'),
        });
        const summary = `replayed ${r.replayed} of ${r.matched} selected (${r.examined} read) to ${what}${r.failed ? `; ${r.failed} refused, still dead letters: ${r.firstError}` : ''}`;
        if (o.json) io.stdout.write(JSON.stringify({ examined: r.examined, matched: r.matched, replayed: r.replayed, failed: r.failed, error: r.firstError }) + '\n');
        else io.stdout.write(summary + '\n');
        return r.failed ? 1 : 0;
      }
      const r = await purgeDeadLetters(t, o.source, o.scan);
      if (o.json) io.stdout.write(JSON.stringify({ examined: r.examined, matched: r.matched, purged: r.purged }) + '\n');
      else io.stdout.write(`purged ${r.purged} of ${r.matched} selected (${r.examined} read) of ${what}\n`);
      return 0;
    });
  } catch (err) {
    return reportFailure(io, 'dead-letters', err);
  }
}

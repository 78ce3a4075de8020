/**
 * `courier tail PATTERN`: prints the messages of a pattern as they flow, through a broadcast
 * subscription of its own (lib/ops/tail.ts): no group loses a message to it, and it is gone on exit.
 */
import { tailMessages, TailedMessage } from '../lib/ops/tail';
import { Headers } from '../lib/transport';
import { BROKER_OPTIONS, BROKER_USAGE, brokerChoice, describeBroker, integerOption, parseCommandArgs, reportFailure, untilSignal, withTransport } from './broker-options';
import { CommandIO, UsageError } from './command';
import { bodyValue, messageBlock, printableHeaders } from './format';

export const USAGE = `Usage: courier tail PATTERN [options]

Prints every message whose type matches PATTERN (a type, or a pattern: * one segment, # any number;
"#" for all) as it flows: time, type, id, source, headers, body. It reads through a subscription of
its own, without a group: no service loses a message to it, and the subscription is removed on exit.

Options:
  --json                         one JSON object per message and line: type, id, source, time, headers, body
  --count N                      exit after N messages
  --for-ms N                     exit after N ms
  --help, -h                     this text
${BROKER_USAGE}
Stops on Ctrl-C (SIGINT) or SIGTERM. Exit status: 0 stopped, 1 failed, 2 bad usage.
`;

const OPTIONS = { ...BROKER_OPTIONS, json: { type: 'boolean' }, count: { type: 'string' }, 'for-ms': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
const SHOWN = new Set<string>([Headers.type, Headers.id, Headers.source, Headers.time]);

/** Runs `courier tail`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  let parsed;
  try {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length ? `one pattern, not ${positionals.length}` : 'no pattern given ("#" for every message)');
    parsed = {
      pattern: positionals[0],
      json: values.json === true,
      count: integerOption(values.count, 'count', 0, 1, 1e9),
      forMs: integerOption(values['for-ms'], 'for-ms', 0, 1, 1e9),
      broker: brokerChoice(values),
    };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier tail: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const { pattern, json, count, forMs, broker } = parsed;
  const signal = untilSignal();
  try {
    return await withTransport(broker, 'tail', async (t) => {
      let seen = 0;
      let reachedCount: () => void = () => undefined;
      const enough = new Promise<void>((resolve) => (reachedCount = resolve));
      const sub = await tailMessages(t, pattern, (m: TailedMessage) => {
        if (count && seen >= count) return;
        seen++;
        io.stdout.write(json ? JSON.stringify({ type: m.type, id: m.id, source: m.source, time: m.time, headers: printableHeaders(m.headers), body: bodyValue(m.body) }) + '\n' : messageBlock(`${m.time ?? '-'} ${m.type} ${m.id ?? '-'} from ${m.source ?? '-'}${m.request ? ' (request)' : ''}`, m.headers, m.body, SHOWN));
        if (count && seen >= count) reachedCount();
      });
      // On stderr, so that stdout holds only messages: scripts and tests wait for this line.
      io.stderr.write(`courier tail: reading ${pattern} on ${describeBroker(broker)}\n`);
      const waits: Promise<unknown>[] = [signal.promise, enough];
      if (forMs) waits.push(new Promise((resolve) => setTimeout(resolve, forMs).unref()));
      await Promise.race(waits);
      await sub.close();
      return 0;
    });
  } catch (err) {
    return reportFailure(io, 'tail', err);
  } finally {
    signal.dispose();
  }
}

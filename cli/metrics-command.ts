/**
 * `courier metrics`: the live meter figures of running services, reached through the broker:
 * each service that attached `metricsReporter` publishes its snapshot periodically on type
 * `courier.metrics` (lib/ops/metrics-report.ts); this command reads them with a broadcast
 * subscription of its own and redraws a table, like `top`.
 */
import { MetricsReport, watchMetrics } from '../lib/ops/metrics-report';
import { BROKER_OPTIONS, BROKER_USAGE, brokerChoice, describeBroker, integerOption, parseCommandArgs, reportFailure, untilSignal, withTransport } from './broker-options';
import { CommandIO, UsageError } from './command';

export const USAGE = `Usage: courier metrics [options]

Shows the meter of every running service that publishes it (bus.attach(metricsReporter({ source })),
docs/operations.md), live: per handler its backlog, the broker's queue depth (AMQP), in-flight,
consume rate, time to drain, latency, failures; per message type its rates and the backlog of its
slowest handler. Redraws on each report, like top.

Options:
  --source NAME                  only this service
  --once                         print the figures once (the instances heard from until one reporting interval
                                 after the first report) and exit
  --wait-ms N                    with --once: how long to listen (default 5000); exit 1 when nothing came
  --json                         one report per line as JSON (with --once: the reports heard, then exit)
  --help, -h                     this text
${BROKER_USAGE}
Stops on Ctrl-C. Exit status: 0 done, 1 failed or (with --once) no report heard, 2 bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  source: { type: 'string' },
  once: { type: 'boolean' },
  'wait-ms': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const num = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits }));
const ms = (n: number | null): string => (n === null ? 'never' : n < 1000 ? `${n} ms` : n < 120_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n / 60_000)} min`);

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

/** The reports as the text table the command shows. */
export function renderReports(reports: readonly MetricsReport[], now = Date.now()): string {
  const out: string[] = [];
  for (const r of [...reports].sort((a, b) => `${a.source} ${a.instance}`.localeCompare(`${b.source} ${b.instance}`))) {
    const s = r.snapshot;
    out.push(`${r.source} @ ${r.instance}  (${Math.max(0, Math.round((now - s.at) / 1000))} s ago)`);
    const hw = [Math.max(7, ...Object.keys(s.handlers).map((k) => k.length)), 8, 8, 9, 9, 9, 14, 7, 5];
    out.push(row(['HANDLER', 'BACKLOG', 'BROKER', 'IN-FLIGHT', 'RATE/s', 'DRAIN', 'P50/P99 ms', 'FAILED', 'DEAD'], hw));
    for (const [name, h] of Object.entries(s.handlers).sort(([a], [b]) => a.localeCompare(b))) {
      out.push(
        row(
          [name, num(h.backlog), h.brokerQueue ? num(h.brokerQueue.messages) : '-', num(h.inFlight), num(h.consumeRate['10s'], 1), ms(h.timeToDrainMs), `${num(h.latencyMs.p50, 1)}/${num(h.latencyMs.p99, 1)}`, num(h.failed), num(h.deadLettered)],
          hw,
        ),
      );
    }
    const tw = [Math.max(4, ...Object.keys(s.topics).map((k) => k.length)), 11, 11, 8, 9, 9];
    out.push(row(['TYPE', 'PUBLISH/s', 'CONSUME/s', 'BACKLOG', 'IN-FLIGHT', 'DRAIN'], tw) + '  SLOWEST HANDLER');
    for (const [name, t] of Object.entries(s.topics).sort(([a], [b]) => a.localeCompare(b))) {
      out.push(row([name, num(t.publishRate['10s'], 1), num(t.consumeRate['10s'], 1), num(t.backlog), num(t.inFlight), ms(t.timeToDrainMs)], tw) + `  ${t.worstHandler ?? '-'}`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** Runs `courier metrics`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  let o;
  try {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, false);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    void positionals;
    o = { source: values.source as string | undefined, once: values.once === true, json: values.json === true, waitMs: integerOption(values['wait-ms'], 'wait-ms', 5000, 1, 3_600_000), broker: brokerChoice(values) };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier metrics: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const opts = o;
  const signal = untilSignal();
  const tty = (io.stdout as NodeJS.WriteStream).isTTY === true;
  try {
    return await withTransport(opts.broker, 'metrics', async (t) => {
      const latest = new Map<string, MetricsReport>();
      let lastDraw = 0;
      // --once: after the first report, one reporting interval more, to hear the other instances.
      let heardFirst: (everyMs: number) => void = () => undefined;
      const first = new Promise<number>((resolve) => (heardFirst = resolve));
      const draw = () => {
        lastDraw = Date.now();
        io.stdout.write((tty ? '\x1b[2J\x1b[H' : '') + `courier metrics on ${describeBroker(opts.broker)}  ${new Date().toISOString()}\n\n` + renderReports([...latest.values()]));
      };
      const sub = await watchMetrics(
        t,
        (r) => {
          latest.set(`${r.source}\u0000${r.instance}`, r);
          heardFirst(r.everyMs);
          if (opts.once) return;
          if (opts.json) io.stdout.write(JSON.stringify(r) + '\n');
          else if (Date.now() - lastDraw >= 500) draw();
        },
        { source: opts.source },
      );
      io.stderr.write(`courier metrics: listening on ${describeBroker(opts.broker)}${opts.source ? ` for ${opts.source}` : ''}\n`);
      if (!opts.once) {
        if (!opts.json) draw();
        await signal.promise;
        await sub.close();
        return 0;
      }
      const deadline = Date.now() + opts.waitMs;
      const sleep = (n: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, n)));
      await Promise.race([signal.promise, sleep(opts.waitMs), first.then((every) => sleep(Math.min(deadline - Date.now(), Math.min(every, 10_000) + 200)))]);
      await sub.close();
      if (latest.size === 0) {
        io.stderr.write(`courier metrics: no report within ${opts.waitMs} ms (does the service attach metricsReporter?)\n`);
        return 1;
      }
      if (opts.json) for (const r of latest.values()) io.stdout.write(JSON.stringify(r) + '\n');
      else io.stdout.write(renderReports([...latest.values()]));
      return 0;
    });
  } catch (err) {
    return reportFailure(io, 'metrics', err);
  } finally {
    signal.dispose();
  }
}

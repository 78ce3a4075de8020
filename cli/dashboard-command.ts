/**
 * `courier dashboard`: the live web page of the services on a broker (lib/dashboard,
 * docs/dashboard.md): who runs (the registry over the bus), the message types between them, the
 * meter of each (metricsReporter) and the dead letters, with replay. Serves until Ctrl-C.
 */
import { BROKER_OPTIONS, BROKER_USAGE, brokerChoice, describeBroker, integerOption, makeTransport, parseCommandArgs, reportFailure, untilSignal } from './broker-options';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier dashboard [options]

Serves a web page of the services on a broker, live: their instances (services with
createBus({ discovery })), the message types as a graph from publishers to subscribing groups,
per type and per handler charts of the rates, backlog, in-flight, time to drain and latency
(services that attach metricsReporter), and the dead letters by reason, to open and replay.

Options:
  --port P                       port to serve on (default 7070; 0: a free one, printed)
  --host H                       address to bind (default 127.0.0.1); another than loopback needs a token
  --token T                      require this token (at least 8 characters) as "Authorization: Bearer T"
                                 or ?token=T on the page and every endpoint (prefer the environment
                                 variable COURIER_DASHBOARD_TOKEN: the command line is visible in ps)
  --history-minutes N            minutes of history charted (default 5)
  --help, -h                     this text
${BROKER_USAGE}
Stops on Ctrl-C. Exit status: 0 stopped, 1 failed, 2 bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  port: { type: 'string' },
  host: { type: 'string' },
  token: { type: 'string' },
  'history-minutes': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/** The options of `courier dashboard`, or 'help'; throws {@link UsageError}. */
export function parseArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseCommandArgs(args, OPTIONS, false);
  if (values.help) return 'help' as const;
  const broker = brokerChoice(values, env);
  if (broker.transport === 'memory') throw new UsageError('--transport memory reaches only this process: run `courier demo --dashboard PORT`, or createDashboard({ buses }) in your process');
  const token = (values.token as string | undefined) ?? (env.COURIER_DASHBOARD_TOKEN || undefined);
  if (token !== undefined && token.length < 8) throw new UsageError('the token must have at least 8 characters');
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  if (!LOOPBACK.includes(host) && token === undefined) throw new UsageError(`--host ${host} serves beyond this machine: give a token (--token or COURIER_DASHBOARD_TOKEN)`);
  return {
    broker,
    host,
    token,
    port: integerOption(values.port, 'port', 7070, 0, 65535),
    historyMinutes: integerOption(values['history-minutes'], 'history-minutes', 5, 1, 60),
  };
}

/** Runs `courier dashboard`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const o = parsed.options;
  const signal = untilSignal();
  let dashboard: import('courier-bus/dashboard').Dashboard | undefined;
  try {
    const { brokerDashboard } = await import('courier-bus/dashboard');
    const transport = await makeTransport(o.broker, 'dashboard');
    transport.on('error', () => undefined);
    dashboard = brokerDashboard(transport, { token: o.token, title: describeBroker(o.broker), historyMinutes: o.historyMinutes });
    const url = await dashboard.listen(o.port, o.host);
    io.stderr.write(`courier dashboard: ${url} on ${describeBroker(o.broker)}${o.token ? ' (token required)' : ''}. Ctrl-C stops it.\n`);
    await signal.promise;
    return 0;
  } catch (err) {
    return reportFailure(io, 'dashboard', err);
  } finally {
    signal.dispose();
    await dashboard?.close().catch(() => undefined);
  }
}

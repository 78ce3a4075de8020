/**
 * `courier demo --dashboard PORT`: the dashboard (lib/dashboard) over the demo's buses, on
 * 127.0.0.1, its dead letters read and replayed with a transport of its own to the run's broker.
 * After a driven run the summary is written and the page stays up until Ctrl-C.
 */
import type { Bus, Transport } from 'courier-bus';
import type { DemoSummary } from '../samples/demo/run-demo';
import type { CommandIO } from './command';

export function demoDashboard(port: number, io: CommandIO, stopSignal: Promise<void>) {
  const buses: Bus[] = [];
  let dashboard: import('courier-bus/dashboard').Dashboard | undefined;
  let listening: Promise<string> | undefined;
  return {
    onBuses(list: readonly Bus[]) {
      for (const b of list) if (!buses.includes(b)) buses.push(b);
    },
    onTransportFactory(make: (name: string) => Transport) {
      const { createDashboard } = require('courier-bus/dashboard') as typeof import('courier-bus/dashboard');
      dashboard = createDashboard({ buses: () => buses, deadLetters: make('dashboard'), token: process.env.COURIER_DASHBOARD_TOKEN || undefined, title: 'courier demo' });
      listening = dashboard.listen(port, '127.0.0.1');
      listening.then(
        (url) => io.stderr.write(`dashboard on ${url}${process.env.COURIER_DASHBOARD_TOKEN ? ' (token required: ?token=...)' : ''}\n`),
        (err: Error) => io.stderr.write(`courier demo: the dashboard could not listen on 127.0.0.1:${port}: ${err.message}\n`),
      );
    },
    async beforeStop(summary: DemoSummary, json: boolean) {
      const url = await listening;
      const { formatSummary } = await import('../samples/demo/run-demo');
      io.stdout.write(json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
      io.stderr.write(`the run ended; the dashboard stays up on ${url}. Ctrl-C stops it.\n`);
      await stopSignal;
    },
    close: async () => dashboard?.close(),
  };
}

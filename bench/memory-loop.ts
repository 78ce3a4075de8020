/**
 * `node [--cpu-prof] -r ts-node/register/transpile-only bench/memory-loop.ts [n]`: case d's events
 * in one process without the bench's children, for profiling (issue 19): 3 rounds of n events
 * (default 100,000) through a bus on the memory transport, 1,000 outstanding, prefetch 1,000;
 * prints the wall rate and the CPU time (user + system) per event of each round.
 * PERF_NOALS=1: the same with `asyncContext: false`.
 */
import 'reflect-metadata';
import { memoryTransport } from '../adapters/memory';
import { createBus, silentLogger, Subscribe, Subscriber } from '../lib';
import { BenchEvent, benchEvent } from './payload';
import { Window } from './window';
const n = Number(process.argv[2] ?? 100000);
let count = 0; let finish!: () => void; const done = new Promise<void>((r) => (finish = r));
@Subscriber({ prefetch: 1000 })
class Sink { @Subscribe(BenchEvent) async handle(): Promise<void> { if (++count === n) finish(); } }
async function main() {
  const b = createBus({ transport: memoryTransport(), source: 'perf', logger: silentLogger, asyncContext: process.env.PERF_NOALS !== '1' }).register(new Sink());
  await b.start();
  for (let round = 0; round < 3; round++) {
    count = 0;
    const c0 = process.cpuUsage(); const t0 = performance.now();
    const d = new Promise<void>((r) => (finish = r));
    await new Window(1000).run(n, (i) => b.publish(BenchEvent, benchEvent(i)));
    await d;
    const cpu = process.cpuUsage(c0); const t = performance.now() - t0;
    console.log(`round ${round}: ${Math.round(n * 1000 / t)} msg/s wall, CPU ${((cpu.user + cpu.system) / n).toFixed(2)} µs/msg`);
  }
  await b.stop();
}
void done; main();

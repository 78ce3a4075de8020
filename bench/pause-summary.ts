/**
 * `node -r ts-node/register/transpile-only bench/pause-summary.ts DIR`: what the slowest requests
 * of a request/reply case met, from the files a run with `BENCH_PAUSES=DIR` wrote (diagnostics.ts):
 * each client's requests (start and latency) and every child's garbage collections. For each
 * client file: its p50 and p99, how many of the requests at or above its p99 overlapped a GC of
 * any process (the client's or the server's: the sides of a run never overlap in time), against
 * the share of all its requests that did, and the GC kinds met.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MeasuredRequests, quantile } from './window';

interface Gc { role: string; pid: number; start: number; duration: number; kind: string }
interface Requests extends MeasuredRequests { role: string; pid: number }

const dir = process.argv[2];
if (!dir) throw new Error('usage: pause-summary.ts DIR');
const gcs: Gc[] = [];
const clients: Requests[] = [];
for (const f of fs.readdirSync(dir).sort()) {
  const data = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  if (f.endsWith('.gc.json')) gcs.push(...(data as Gc[]));
  else if (f.endsWith('.requests.json')) clients.push(data as Requests);
}
gcs.sort((a, b) => a.start - b.start);

/** The GCs that overlap [from, to). */
function met(from: number, to: number): Gc[] {
  const out: Gc[] = [];
  for (const g of gcs) {
    if (g.start >= to) break;
    if (g.start + g.duration > from) out.push(g);
  }
  return out;
}

const fmt = (x: number) => x.toFixed(2);
for (const c of clients.sort((a, b) => a.starts[0] - b.starts[0])) {
  const sorted = [...c.latencies].sort((a, b) => a - b);
  const p99 = quantile(sorted, 0.99);
  let any = 0;
  let slow = 0;
  let slowMet = 0;
  const kinds = new Map<string, number>();
  const byRole = new Map<string, number>();
  for (let i = 0; i < c.starts.length; i++) {
    const m = met(c.starts[i], c.starts[i] + c.latencies[i]);
    if (m.length) any++;
    if (c.latencies[i] < p99) continue;
    slow++;
    if (!m.length) continue;
    slowMet++;
    for (const g of m) {
      kinds.set(g.kind, (kinds.get(g.kind) ?? 0) + 1);
      byRole.set(g.role, (byRole.get(g.role) ?? 0) + 1);
    }
  }
  let end = c.starts[0];
  for (let i = 0; i < c.starts.length; i++) end = Math.max(end, c.starts[i] + c.latencies[i]);
  const ownGcs = met(c.starts[0], end);
  const gcMs = ownGcs.reduce((s, g) => s + g.duration, 0);
  console.log(
    `${c.role} (${c.starts.length} requests): p50 ${fmt(quantile(sorted, 0.5))} ms, p99 ${fmt(p99)} ms, max ${fmt(sorted[sorted.length - 1])} ms; ` +
      `${slow} at or above p99, ${slowMet} of them overlapped a GC (${JSON.stringify(Object.fromEntries(kinds))}, by ${JSON.stringify(Object.fromEntries(byRole))}); ` +
      `of all requests ${fmt((100 * any) / c.starts.length)} % overlapped one; GCs from its first request to its last reply ${ownGcs.length}, ${fmt(gcMs)} ms`,
  );
}

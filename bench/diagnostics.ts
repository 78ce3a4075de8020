/**
 * Memory diagnostics of a benchmark child, switched on by environment variables (run.ts passes its
 * environment on). None changes what is measured unless set; docs/benchmarks.md shows their use.
 *
 *   BENCH_PEAK_DETAIL=1        at exit, print the heap at the moment of peak RSS: V8's spaces
 *                              (used/committed MB), external memory and ArrayBuffers.
 *   BENCH_ALLOC_PROF=DIR       sample allocations (V8's sampling heap profiler, objects later
 *                              collected included) and write DIR/<role>-<pid>.heapprofile;
 *                              summarise it with bench/alloc-summary.ts.
 *   BENCH_ALLOC_PROF_MINOR=0   with BENCH_ALLOC_PROF: leave out what scavenges collected, which
 *                              leaves what survived them (promoted, or still alive).
 *   BENCH_HEAP_SNAPSHOT=DIR    write DIR/<role>-<pid>-<ms>.heapsnapshot at BENCH_HEAP_SNAPSHOT_MS
 *                              (default 1500) after the child started: what is alive mid-run,
 *                              which is what scavenges must copy; summarise it with
 *                              bench/snapshot-summary.ts.
 *   BENCH_V8_FLAGS="..."       V8 flags set at start, e.g. "--trace-gc-nvp" to log every GC with
 *                              the bytes that survived it (NODE_OPTIONS refuses such flags).
 *   BENCH_PAUSES=DIR           write DIR/<role>-<pid>.gc.json (every garbage collection: start in
 *                              epoch ms, duration, kind) and, for a request/reply client,
 *                              DIR/<role>-<pid>.requests.json (each measured request's start and
 *                              latency); bench/pause-summary.ts tells which slow requests met a GC.
 */
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import { measuredRequests } from './window';

const env = process.env;
if (env.BENCH_V8_FLAGS) v8.setFlagsFromString(env.BENCH_V8_FLAGS);

if (env.BENCH_HEAP_SNAPSHOT) {
  const at = Number(env.BENCH_HEAP_SNAPSHOT_MS ?? 1500);
  setTimeout(() => {
    fs.mkdirSync(env.BENCH_HEAP_SNAPSHOT!, { recursive: true });
    v8.writeHeapSnapshot(`${env.BENCH_HEAP_SNAPSHOT}/${process.argv[2]}-${process.pid}-${at}.heapsnapshot`);
  }, at).unref();
}

const mb = (bytes: number) => Math.round(bytes / 1048576);
let peak: Record<string, unknown> | undefined;

/** Called at each new peak of RSS. */
export function onNewPeak(): void {
  if (!env.BENCH_PEAK_DETAIL) return;
  const m = process.memoryUsage();
  peak = {
    rss: mb(m.rss),
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
    spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, `${mb(s.space_used_size)}/${mb(s.space_size)}`])),
  };
}

interface GcEntry { start: number; duration: number; kind: string }
const gcKinds: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
const gcLog: GcEntry[] | undefined = env.BENCH_PAUSES ? [] : undefined;
if (gcLog) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      gcLog.push({ start: performance.timeOrigin + e.startTime, duration: e.duration, kind: gcKinds[kind ?? -1] ?? String(kind) });
    }
  }).observe({ entryTypes: ['gc'] });
}
let session: inspector.Session | undefined;
if (env.BENCH_ALLOC_PROF) {
  session = new inspector.Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: env.BENCH_ALLOC_PROF_MINOR !== '0',
  } as inspector.HeapProfiler.StartSamplingParameterType);
}

/**
 * Before the child reports: writes the allocation profile and the pause logs (with what
 * window.ts measureRequests timed, if this child is a request/reply client) and prints the peak's heap.
 */
export async function finish(role: string): Promise<void> {
  if (session) {
    const s = session;
    await new Promise<void>((resolve, reject) =>
      s.post('HeapProfiler.stopSampling', (err, res) => {
        if (err) return reject(err);
        fs.mkdirSync(env.BENCH_ALLOC_PROF!, { recursive: true });
        fs.writeFileSync(`${env.BENCH_ALLOC_PROF}/${role}-${process.pid}.heapprofile`, JSON.stringify(res.profile));
        resolve();
      }),
    );
  }
  if (gcLog) {
    const dir = env.BENCH_PAUSES!;
    fs.mkdirSync(dir, { recursive: true });
    const name = `${dir}/${role}-${process.pid}`;
    fs.writeFileSync(`${name}.gc.json`, JSON.stringify(gcLog.map((g) => ({ role, pid: process.pid, ...g }))));
    if (measuredRequests) fs.writeFileSync(`${name}.requests.json`, JSON.stringify({ role, pid: process.pid, ...measuredRequests }));
  }
  if (peak) process.stderr.write(`heap at peak RSS, ${role}: ${JSON.stringify(peak)}\n`);
}

import { median } from './window';

/** The tables run.ts prints, and the targets of issues 8 and 19 checked against them. */
export interface Side {
  readonly rate: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly peakRssMb: number;
  readonly rounds: ReadonlyArray<{ rate: number; p99?: number; rssMb: number; detail: Record<string, number> }>;
}

export interface Row {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly courier: Side;
  /** The like-for-like raw client (Courier's topology and message shape, by hand). */
  readonly raw?: Side;
  /** The plain raw client a user would write (issue 19). */
  readonly plain?: Side;
}

/** The median of the per-round ratios of `a` to `b` (rounds paired by index) and their range. */
export interface Ratio {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function perRoundRatio(a: Side, b: Side, key: 'rate' | 'p99' = 'rate'): Ratio {
  const n = Math.min(a.rounds.length, b.rounds.length);
  const xs = Array.from({ length: n }, (_, i) => (a.rounds[i][key] ?? NaN) / (b.rounds[i][key] ?? NaN)).sort((x, y) => x - y);
  const mid = xs.length >> 1;
  const median = xs.length === 0 ? NaN : xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median, min: xs[0] ?? NaN, max: xs[xs.length - 1] ?? NaN };
}

const fmtRatio = (r: Ratio) => (Number.isFinite(r.median) ? (r.min === r.max ? r.median.toFixed(2) : `${r.median.toFixed(2)} (${r.min.toFixed(2)}-${r.max.toFixed(2)})`) : '-');

export interface Report {
  readonly mode: string;
  readonly rounds: number;
  readonly machine: Record<string, unknown>;
  readonly rows: readonly Row[];
  readonly failures: readonly string[];
  readonly wallMs: number;
}

/** Peak RSS at the larger count at most this much above the smaller count's: "flat". */
export const FLAT_GROWTH = 1.2;

export interface Verdict {
  readonly id: string;
  readonly target: string;
  readonly value: string;
  readonly holds: boolean;
}

export function verdicts(rows: readonly Row[]): Verdict[] {
  const out: Verdict[] = [];
  const fmt = (x: number) => `${x.toFixed(2)}x`;
  for (const r of rows) {
    if (!r.raw) continue;
    const ratio = perRoundRatio(r.courier, r.raw).median;
    const rss = r.courier.peakRssMb / r.raw.peakRssMb;
    if (r.id === 'a' || r.id === 'c' || r.id === 'c-held') out.push({ id: r.id, target: 'rate >= 0.8x raw (aim 0.9x)', value: fmt(ratio), holds: ratio >= 0.8 });
    if (r.id.startsWith('b')) {
      out.push({ id: r.id, target: 'rate >= 0.7x raw', value: fmt(ratio), holds: ratio >= 0.7 });
      const p99 = perRoundRatio(r.courier, r.raw, 'p99').median;
      out.push({ id: r.id, target: 'p99 <= 1.5x raw', value: fmt(p99), holds: p99 <= 1.5 });
    }
    if (r.id === 'h-otel-off') out.push({ id: r.id, target: 'rate >= 0.95x no tracing (within noise)', value: fmt(ratio), holds: ratio >= 0.95 });
    if (r.id === 'e') {
      for (const who of ['producer', 'consumer'] as const) {
        const g = r.courier.rounds[0].detail[`${who}Growth`];
        out.push({ id: r.id, target: `Courier ${who} peak RSS flat (<= ${FLAT_GROWTH}x from smaller to larger count)`, value: fmt(g), holds: g <= FLAT_GROWTH });
      }
    }
    out.push({ id: r.id, target: 'peak RSS <= 1.5x raw', value: fmt(rss), holds: rss <= 1.5 });
  }
  return out;
}

/** Issue 19's targets against the plain raw clients, and the memory transport's floor. */
export function plainVerdicts(rows: readonly Row[]): Verdict[] {
  const out: Verdict[] = [];
  const fmt = (x: number) => `${x.toFixed(2)}x`;
  const floor: Record<string, number> = { a: 0.85, b1: 0.8, b100: 0.9, c: 0.85, 'c-held': 0.85 };
  for (const r of rows) {
    if (r.id === 'd-events') out.push({ id: r.id, target: 'memory transport >= 100,000 events/s', value: `${Math.round(r.courier.rate)}/s`, holds: r.courier.rate >= 100_000 });
    if (!r.plain || floor[r.id] === undefined) continue;
    const ratio = perRoundRatio(r.courier, r.plain).median;
    out.push({ id: r.id, target: `rate >= ${floor[r.id]}x plain raw`, value: fmt(ratio), holds: ratio >= floor[r.id] });
    if (r.id === 'b1') {
      const p99 = perRoundRatio(r.courier, r.plain, 'p99').median;
      out.push({ id: r.id, target: 'p99 <= 1.3x plain raw', value: fmt(p99), holds: p99 <= 1.3 });
    }
    const rss = r.courier.peakRssMb / r.plain.peakRssMb;
    out.push({ id: r.id, target: 'peak RSS <= 1.3x plain raw', value: fmt(rss), holds: rss <= 1.3 });
  }
  return out;
}

const num = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function renderTable(report: Report): string {
  const head = ['case', 'unit', 'Courier', 'raw', 'ratio (range)', 'p50 ms C / raw', 'p99 ms C / raw', 'peak RSS MB C / raw'];
  const lines: string[][] = [head];
  for (const r of report.rows) {
    const c = r.courier;
    const w = r.raw;
    const pair = (a?: number, b?: number, d = 2) => (a === undefined ? '-' : `${num(a, d)} / ${num(b, d)}`);
    lines.push([
      r.title,
      r.unit,
      num(c.rate),
      num(w?.rate),
      w ? fmtRatio(perRoundRatio(c, w)) : '-',
      pair(c.p50, w?.p50),
      pair(c.p99, w?.p99),
      pair(c.peakRssMb, w?.peakRssMb, 0),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const fmtLine = (l: string[]) => `| ${l.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const out = [fmtLine(lines[0]), `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`];
  for (const l of lines.slice(1)) out.push(fmtLine(l));
  const plainRows = report.rows.filter((r) => r.plain);
  if (plainRows.length) {
    out.push('', 'Against the plain raw clients a user would write (issue 19; bench/roles/plain-amqp.ts, plain-mqtt.ts):', '');
    const ph = ['case', 'unit', 'Courier', 'plain', 'ratio', 'p99 ms C / plain', 'p99 ratio', 'peak RSS MB C / plain'];
    const pl: string[][] = [ph];
    for (const r of plainRows) {
      const c = r.courier;
      const p = r.plain!;
      pl.push([r.title, r.unit, num(c.rate), num(p.rate), fmtRatio(perRoundRatio(c, p)), c.p99 === undefined ? '-' : `${num(c.p99, 2)} / ${num(p.p99, 2)}`, c.p99 === undefined ? '-' : fmtRatio(perRoundRatio(c, p, 'p99')), `${num(c.peakRssMb)} / ${num(p.peakRssMb)}`]);
    }
    const pw = ph.map((_, i) => Math.max(...pl.map((l) => l[i].length)));
    const pf = (l: string[]) => `| ${l.map((cell, i) => (i < 2 ? cell.padEnd(pw[i]) : cell.padStart(pw[i]))).join(' | ')} |`;
    out.push(pf(pl[0]), `|${pw.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...pl.slice(1).map(pf));
  }
  const cpuRows = report.rows.filter((r) => r.courier.rounds.some((x) => x.detail.brokerCpuMsPer1k !== undefined));
  if (cpuRows.length) {
    const cpu = (side?: Side) => (side ? num(median(side.rounds.map((x) => x.detail.brokerCpuMsPer1k ?? NaN)), 0) : '-');
    out.push('', 'RabbitMQ CPU ms per 1,000 messages (beam.smp user + system from /proc; medians) Courier / raw / plain:');
    for (const r of cpuRows) out.push(`  ${r.title}: ${cpu(r.courier)} / ${cpu(r.raw)} / ${cpu(r.plain)}`);
  }
  const cpuKeys: Record<string, [string, string][]> = {
    a: [['producer', 'producerCpuUs'], ['consumer', 'consumerCpuUs']],
    c: [['producer', 'producerCpuUs'], ['consumer', 'consumerCpuUs']],
    'c-held': [['producer', 'producerCpuUs'], ['consumer', 'consumerCpuUs']],
    b1: [['client', 'clientCpuUs'], ['server', 'serverCpuUs']],
    b100: [['client', 'clientCpuUs'], ['server', 'serverCpuUs']],
    'd-events': [['process', 'cpuUs']],
    'd-rpc': [['process', 'cpuUs']],
  };
  const clientCpu = report.rows.filter((r) => cpuKeys[r.id] && r.courier.rounds.some((x) => x.detail[cpuKeys[r.id][0][1]] !== undefined));
  if (clientCpu.length) {
    // CPU time rather than wall time: on a shared machine it moves far less with the load.
    const us = (side: Side | undefined, key: string) => (side ? num(median(side.rounds.map((x) => x.detail[key] ?? NaN)), 1) : '-');
    out.push('', 'Client CPU µs per message (user + system of each process from its ready; medians) Courier / raw / plain:');
    for (const r of clientCpu) out.push(`  ${r.title}: ${cpuKeys[r.id].map(([who, k]) => `${who} ${us(r.courier, k)} / ${us(r.raw, k)} / ${us(r.plain, k)}`).join('; ')}`);
  }
  const e = report.rows.find((r) => r.id === 'e');
  if (e) {
    out.push('', 'Back-pressure (case e), peak RSS in MB by message count:');
    for (const [who, s] of [['Courier', e.courier], ['raw', e.raw]] as const) {
      if (!s) continue;
      const d = s.rounds[0].detail;
      const counts = Object.keys(d).filter((k) => k.startsWith('producerRssMb@')).map((k) => k.split('@')[1]);
      out.push(`  ${who.padEnd(8)} ${counts.map((n) => `${n}: producer ${num(d[`producerRssMb@${n}`])}, consumer ${num(d[`consumerRssMb@${n}`])}`).join('; ')}`);
    }
  }
  out.push('', report.mode === 'smoke' ? 'Targets (issue 8; smoke counts are too small and too short to judge them):' : 'Targets (issue 8):');
  for (const v of verdicts(report.rows)) out.push(`  ${v.holds ? 'holds ' : 'MISSED'}  ${v.id.padEnd(8)} ${v.target}: ${v.value}`);
  const pv = plainVerdicts(report.rows);
  if (pv.length) out.push('', 'Targets (issue 19, against the plain raw clients):', ...pv.map((v) => `  ${v.holds ? 'holds ' : 'MISSED'}  ${v.id.padEnd(8)} ${v.target}: ${v.value}`));
  if (report.failures.length) out.push('', 'FAILED cases:', ...report.failures.map((f) => `  ${f}`));
  const m = report.machine;
  out.push('', `Machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGb} GB, node ${m.node}, RabbitMQ ${m.rabbitmq}, Mosquitto ${m.mosquitto}, load ${JSON.stringify(m.loadavg)}`);
  out.push(`Mode ${report.mode}, ${report.rounds} round(s), wall time ${(report.wallMs / 1000).toFixed(1)} s`, '');
  return out.join('\n');
}

/** The table run.ts prints, and the targets of issue 8 checked against it. */
export interface Side {
  readonly rate: number;
  readonly p50?: number;
  readonly p99?: number;
  readonly peakRssMb: number;
  readonly rounds: ReadonlyArray<{ rate: number; rssMb: number; detail: Record<string, number> }>;
}

export interface Row {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly courier: Side;
  readonly raw?: Side;
}

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
    const ratio = r.courier.rate / r.raw.rate;
    const rss = r.courier.peakRssMb / r.raw.peakRssMb;
    if (r.id === 'a' || r.id === 'c') out.push({ id: r.id, target: 'rate >= 0.8x raw (aim 0.9x)', value: fmt(ratio), holds: ratio >= 0.8 });
    if (r.id.startsWith('b')) {
      out.push({ id: r.id, target: 'rate >= 0.7x raw', value: fmt(ratio), holds: ratio >= 0.7 });
      const p99 = r.courier.p99! / r.raw.p99!;
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

const num = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function renderTable(report: Report): string {
  const head = ['case', 'unit', 'Courier', 'raw', 'ratio', 'p50 ms C / raw', 'p99 ms C / raw', 'peak RSS MB C / raw'];
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
      w ? (c.rate / w.rate).toFixed(2) : '-',
      pair(c.p50, w?.p50),
      pair(c.p99, w?.p99),
      pair(c.peakRssMb, w?.peakRssMb, 0),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const fmtLine = (l: string[]) => `| ${l.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const out = [fmtLine(lines[0]), `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`];
  for (const l of lines.slice(1)) out.push(fmtLine(l));
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
  if (report.failures.length) out.push('', 'FAILED cases:', ...report.failures.map((f) => `  ${f}`));
  const m = report.machine;
  out.push('', `Machine: ${m.nproc} cores (${m.cpu}), ${m.memoryGb} GB, node ${m.node}, RabbitMQ ${m.rabbitmq}, Mosquitto ${m.mosquitto}, load ${JSON.stringify(m.loadavg)}`);
  out.push(`Mode ${report.mode}, ${report.rounds} round(s), wall time ${(report.wallMs / 1000).toFixed(1)} s`, '');
  return out.join('\n');
}

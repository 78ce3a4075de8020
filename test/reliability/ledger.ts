/**
 * Counts messages by id through a fault test and reports one line:
 * sent, confirmed, received, lost, unexpected, duplicates, reconnects, recovery time, peak RSS.
 * "Lost" is a confirmed id never received; "unexpected" a received id never sent.
 * Call `report()` only after the fault has healed and the final drain is done.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface LedgerFigures {
  readonly case: string;
  readonly sent: number;
  readonly confirmed: number;
  readonly received: number;
  readonly lost: number;
  readonly unexpected: number;
  readonly duplicates: number;
  readonly reconnects: number;
  readonly recoveryMs: number | null;
  readonly peakRssMb: number;
}

export class Ledger {
  private readonly sentIds = new Set<string>();
  private readonly confirmedIds = new Set<string>();
  private readonly receivedCounts = new Map<string, number>();
  reconnects = 0;
  recoveryMs: number | null = null;
  private peakRss = process.memoryUsage().rss;
  private readonly sampler = setInterval(() => this.sampleRss(), 100).unref();

  constructor(readonly name: string) {}

  sent(id: string): void {
    this.sentIds.add(id);
  }
  confirmed(id: string): void {
    this.confirmedIds.add(id);
  }
  received(id: string): void {
    this.receivedCounts.set(id, (this.receivedCounts.get(id) ?? 0) + 1);
  }
  /** Peak RSS of another process (a child), in bytes. */
  observeRss(bytes: number): void {
    this.peakRss = Math.max(this.peakRss, bytes);
  }
  private sampleRss(): void {
    this.observeRss(process.memoryUsage().rss);
  }

  get lostIds(): string[] {
    return [...this.confirmedIds].filter((id) => !this.receivedCounts.has(id));
  }
  /** True when every confirmed id was received at least once. */
  get complete(): boolean {
    for (const id of this.confirmedIds) if (!this.receivedCounts.has(id)) return false;
    return true;
  }

  figures(): LedgerFigures {
    this.sampleRss();
    clearInterval(this.sampler);
    let duplicates = 0;
    let unexpected = 0;
    for (const [id, n] of this.receivedCounts) {
      duplicates += n - 1;
      if (!this.sentIds.has(id)) unexpected++;
    }
    return {
      case: this.name,
      sent: this.sentIds.size,
      confirmed: this.confirmedIds.size,
      received: this.receivedCounts.size,
      lost: this.lostIds.length,
      unexpected,
      duplicates,
      reconnects: this.reconnects,
      recoveryMs: this.recoveryMs,
      peakRssMb: Math.round(this.peakRss / 1024 / 1024),
    };
  }

  /** Prints the one line and appends it to .tmp/reliability.jsonl for docs/reliability.md. */
  report(): LedgerFigures {
    const f = this.figures();
    console.log(
      `      [${f.case}] sent ${f.sent}, confirmed ${f.confirmed}, received ${f.received}, lost ${f.lost}, ` +
        `unexpected ${f.unexpected}, duplicates ${f.duplicates}, reconnects ${f.reconnects}, ` +
        `recovery ${f.recoveryMs === null ? '-' : `${f.recoveryMs} ms`}, peak RSS ${f.peakRssMb} MB`,
    );
    const dir = path.join(__dirname, '..', '..', '.tmp');
    fs.mkdirSync(dir, { recursive: true });
    fs.appendFileSync(path.join(dir, 'reliability.jsonl'), JSON.stringify({ at: new Date().toISOString(), ...f }) + '\n');
    return f;
  }
}

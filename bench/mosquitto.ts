/**
 * A Mosquitto of the benchmark's own, on a free loopback port: the machine's default one drops
 * QoS 1 messages for a subscriber that falls behind (max_queued_messages 1000,
 * max_inflight_messages 20; ../shared/notes/brokers.md), which would make the MQTT case measure
 * loss instead of throughput. Stopped by its PID, never by name.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './window';

export class BenchMosquitto {
  private proc?: ChildProcess;
  private dir = '';
  port = 0;

  /** `inflight`: the broker's outgoing QoS 1 window per client, set to the benchmark's window. */
  constructor(private readonly inflight: number) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static version(): string {
    const r = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
    return /mosquitto version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-bench-mosquitto-'));
    const conf = path.join(this.dir, 'mosquitto.conf');
    fs.writeFileSync(
      conf,
      [
        `listener ${this.port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'max_queued_messages 0', // no limit: never drop for a subscriber that is behind
        `max_inflight_messages ${this.inflight}`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        '',
      ].join('\n'),
    );
    this.proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.on('data', (b) => (stderr += b));
    this.proc.on('error', (e) => (stderr += String(e)));
    const deadline = Date.now() + 5000;
    while (!(await answers(this.port))) {
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`mosquitto did not start: ${stderr}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null && p.pid) {
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      process.kill(p.pid, 'SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    }
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** For process exit handlers: synchronous. */
  kill(): void {
    if (this.proc?.pid && this.proc.exitCode === null) process.kill(this.proc.pid, 'SIGKILL');
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

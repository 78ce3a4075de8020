/**
 * A Mosquitto of the caller's own, on a free loopback port, configured not to drop (no queue
 * limit; the machine's default broker drops QoS 1 messages beyond 1,000 per session, see
 * docs/brokers.md). Used by the tests that assert "0 lost" and by the benchmark. Stopped by its
 * PID, never by name.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { answers } from './brokers';
import { sleep } from './wait';

export interface OwnMosquittoOptions {
  /** The text of an ACL file to enforce (Mosquitto's acl_file syntax). */
  readonly acl?: string;
  /** The broker's outgoing QoS 1/2 window per client (max_inflight_messages). Default 100. */
  readonly inflight?: number;
  /**
   * Persistence as docs/brokers.md recommends: `persistence true` in the broker's own directory,
   * `autosave_interval 1` with `autosave_on_changes true`, `max_queued_bytes` 1 GiB. Default off.
   */
  readonly persistence?: boolean;
  /**
   * With `persistence`: save after every change (`autosave_on_changes true`, docs/brokers.md's
   * durable setting; default) or once a second (`autosave_on_changes false`, the periodic one).
   */
  readonly autosaveOnChanges?: boolean;
}

export class OwnMosquitto {
  private proc?: ChildProcess;
  private dir = '';
  port = 0;

  constructor(private readonly options: OwnMosquittoOptions = {}) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  static version(): string {
    const r = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' });
    return /mosquitto version (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-mosquitto-'));
    fs.chmodSync(this.dir, 0o755); // mosquitto started as root drops to its own user, which must read these
    const conf = path.join(this.dir, 'mosquitto.conf');
    fs.writeFileSync(
      conf,
      [
        `listener ${this.port} 127.0.0.1`,
        'allow_anonymous true',
        ...(this.options.persistence
          ? ['persistence true', `persistence_location ${this.persistenceDir()}/`, 'autosave_interval 1', `autosave_on_changes ${this.options.autosaveOnChanges ?? true}`, 'max_queued_bytes 1073741824']
          : ['persistence false']),
        'max_queued_messages 0', // no limit: never drop for a subscriber that is behind
        `max_inflight_messages ${this.options.inflight ?? 100}`,
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        ...(this.options.acl !== undefined ? [`acl_file ${path.join(this.dir, 'acl')}`] : []),
        '',
      ].join('\n'),
    );
    if (this.options.acl !== undefined) fs.writeFileSync(path.join(this.dir, 'acl'), this.options.acl, { mode: 0o644 });
    this.proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.on('data', (b) => (stderr += b));
    this.proc.on('error', (e) => (stderr += String(e)));
    const deadline = Date.now() + 5000;
    while (!(await answers('127.0.0.1', this.port, 200))) {
      if (Date.now() > deadline || this.proc.exitCode !== null) throw new Error(`mosquitto did not start: ${stderr}`);
      await sleep(50);
    }
  }

  /** A directory the broker can write after it dropped to its own user (it runs as `mosquitto` when started as root). */
  private persistenceDir(): string {
    const dir = path.join(this.dir, 'data');
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o777);
    return dir;
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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

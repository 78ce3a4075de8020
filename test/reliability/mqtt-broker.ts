/**
 * A Mosquitto that a reliability test starts itself, on a free loopback port that it keeps across
 * restarts, with the durable configuration of docs/brokers.md (persistence, autosave at once, no
 * queue count limit) and optionally TLS, a password file or an ACL. Stopped by its PID only.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { answers } from '../helpers/brokers';
import { sleep } from '../helpers/wait';

export interface MqttBrokerOptions {
  /** Persistence on, autosave_interval 1, autosave_on_changes true. Default true. */
  readonly persistence?: boolean;
  /** Mosquitto's own `max_inflight_messages` (QoS 1 in flight to one client). Default 100. */
  readonly maxInflight?: number;
  /** ACL file text. */
  readonly acl?: string;
  /** user -> password; turns allow_anonymous off. */
  readonly users?: Readonly<Record<string, string>>;
  /** A TLS listener with these PEM files (paths) instead of plain TCP. */
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

export class MqttBroker {
  private proc?: ChildProcess;
  readonly dir: string;
  port = 0;
  stderr = '';

  constructor(private readonly options: MqttBrokerOptions = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-rel-mosquitto-'));
    // Mosquitto started as root drops to its own user, which must read the files and write the store.
    fs.chmodSync(this.dir, 0o777);
  }

  get url(): string {
    return `${this.options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts (again, on the same port after the first start) and waits until it accepts connections. */
  async start(): Promise<void> {
    if (!this.port) {
      this.port = await freePort();
      this.writeConfig();
    }
    this.stderr = '';
    const proc = spawn('mosquitto', ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.on('data', (b) => (this.stderr += b));
    const deadline = Date.now() + 5000;
    while (!(await answers('127.0.0.1', this.port, 200))) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`mosquitto did not start: ${this.stderr}`);
      await sleep(25);
    }
  }

  /** Stops the process this object started, by its PID, and waits (bounded) until it exited. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null || !p.pid) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    process.kill(p.pid, signal);
    await Promise.race([exited, sleep(5000)]);
    if (p.exitCode === null && p.signalCode === null) {
      process.kill(p.pid, 'SIGKILL');
      await Promise.race([exited, sleep(2000)]);
    }
  }

  /** Stops it and removes its directory (store, certificates, password file). */
  async dispose(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private writeConfig(): void {
    const o = this.options;
    const file = (name: string, text: string) => {
      const p = path.join(this.dir, name);
      fs.writeFileSync(p, text, { mode: 0o644 });
      return p;
    };
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      `allow_anonymous ${o.users ? 'false' : 'true'}`,
      'max_queued_messages 0',
      'max_queued_bytes 0',
      `max_inflight_messages ${o.maxInflight ?? 100}`,
      'log_dest stderr',
      'log_type error',
      'log_type warning',
    ];
    if (o.persistence ?? true) {
      lines.push('persistence true', `persistence_location ${this.dir}/`, 'autosave_interval 1', 'autosave_on_changes true');
    } else lines.push('persistence false');
    if (o.tls) lines.push(`cafile ${o.tls.ca}`, `certfile ${o.tls.cert}`, `keyfile ${o.tls.key}`);
    if (o.acl !== undefined) lines.push(`acl_file ${file('acl', o.acl)}`);
    if (o.users) {
      const pw = file('passwd', '');
      for (const [user, password] of Object.entries(o.users)) {
        execFileSync('mosquitto_passwd', ['-b', pw, user, password], { stdio: 'ignore' });
      }
      fs.chmodSync(pw, 0o644);
      lines.push(`password_file ${pw}`);
    }
    file('mosquitto.conf', lines.join('\n') + '\n');
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

/**
 * The one broker fixture for every test that needs a broker. Order of choice:
 *   1. an explicit URL from the environment (COURIER_AMQP_URL, COURIER_MQTT_URL);
 *   2. (to come with the testcontainers issue) a container when a Docker-compatible engine answers;
 *   3. the machine's own broker on its default port.
 * It says once which one it chose, and fails loudly when none answers.
 */
import net from 'node:net';
import { redactUrl } from '../../lib/errors';

export interface BrokerEndpoint {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Where it came from: 'env', 'container' or 'local'. */
  readonly origin: 'env' | 'container' | 'local';
}

const chosen = new Map<string, Promise<BrokerEndpoint>>();

export function amqpBroker(): Promise<BrokerEndpoint> {
  return pick('amqp', process.env.COURIER_AMQP_URL, 'amqp://guest:guest@127.0.0.1:5672');
}

export function mqttBroker(): Promise<BrokerEndpoint> {
  return pick('mqtt', process.env.COURIER_MQTT_URL, 'mqtt://127.0.0.1:1883');
}

function pick(kind: string, fromEnv: string | undefined, local: string): Promise<BrokerEndpoint> {
  let p = chosen.get(kind);
  if (!p) {
    p = resolve(kind, fromEnv, local);
    chosen.set(kind, p);
  }
  return p;
}

async function resolve(kind: string, fromEnv: string | undefined, local: string): Promise<BrokerEndpoint> {
  const candidates: Array<[BrokerEndpoint['origin'], string]> = [];
  if (fromEnv) candidates.push(['env', fromEnv]);
  else candidates.push(['local', local]);
  const tried: string[] = [];
  for (const [origin, url] of candidates) {
    const u = new URL(url);
    const port = Number(u.port) || (kind === 'amqp' ? 5672 : 1883);
    if (await answers(u.hostname, port)) {
      console.log(`[brokers] ${kind}: using ${origin} broker at ${redactUrl(url)}`);
      return { url, host: u.hostname, port, origin };
    }
    tried.push(`${origin} ${redactUrl(url)}`);
  }
  throw new Error(`No ${kind} broker answers (tried: ${tried.join(', ')}). Start one (see README) or set COURIER_${kind.toUpperCase()}_URL.`);
}

export function answers(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

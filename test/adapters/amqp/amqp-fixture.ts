/**
 * What the AMQP specs share: the broker URL, a raw amqplib connection for checks and cleanup
 * (the adapter under test is never mocked), and the deletion of every queue a spec made.
 */
import type { ChannelModel } from 'amqplib';
import amqplib from 'amqplib';
import { SubscriptionSpec } from '../../../lib/transport';
import { amqpBroker } from '../../helpers/brokers';
import { deadQueueName, delayQueueName, instanceQueueName, workQueueName } from '../../../adapters/amqp';

/** Retry delays the specs use; their delay queues are deleted with the subscription's queues. */
export const SPEC_DELAYS = [0, 50, 100, 200, 500];

export async function rawConnection(): Promise<ChannelModel> {
  const { url } = await amqpBroker();
  return amqplib.connect(url);
}

/** Deletes `<group>.<name>` (or an instance's `<instance>.<name>`), its `.dead` and its delay queues (broadcast: its `.dead`). */
export async function deleteQueues(specs: SubscriptionSpec[]): Promise<void> {
  const conn = await rawConnection();
  try {
    for (const s of specs) {
      const names = [deadQueueName(s.group, s.name)];
      const q = s.group ? workQueueName(s.group, s.name) : s.instance ? instanceQueueName(s.instance, s.name) : undefined;
      if (q) names.push(q, ...SPEC_DELAYS.map((d) => delayQueueName(q, d)));
      for (const name of names) {
        // A channel per deletion: deleting is idempotent in RabbitMQ, but a refusal closes the channel.
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await ch.deleteQueue(name).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * Runs rabbitmqctl against the broker amqpBroker() chose: inside its container (found by its
 * published port) or on this machine.
 */
export async function rabbitmqctl(args: string[]): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  const broker = await amqpBroker();
  let cmd = 'rabbitmqctl';
  let argv = args;
  if (broker.origin === 'container') {
    const engine = ['podman', 'docker'].find((e) => {
      try {
        execFileSync(e, ['--version'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    if (!engine) throw new Error('rabbitmqctl: the broker runs in a container and neither podman nor docker is installed');
    const ps = execFileSync(engine, ['ps', '--format', '{{.ID}} {{.Ports}}'], { encoding: 'utf8' });
    const line = ps.split('\n').find((l) => l.includes(`:${broker.port}->5672`));
    if (!line) throw new Error(`rabbitmqctl: no container publishes port ${broker.port}`);
    cmd = engine;
    argv = ['exec', line.split(' ')[0], 'rabbitmqctl', ...args];
  }
  return execFileSync(cmd, argv, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The broker URL with other credentials. */
export async function urlAs(user: string, password: string): Promise<string> {
  const u = new URL((await amqpBroker()).url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

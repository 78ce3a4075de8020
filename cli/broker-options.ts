/**
 * The broker options every operating command shares (`--transport`, `--url`, the adapter's
 * naming options), how they become a connected transport, and how a command reports a failure.
 * Credentials are never echoed: a URL is shown and every error message written with its password
 * replaced by `***` (lib/errors.ts redactUrl / redactSecrets). Put the URL in COURIER_URL rather
 * than on the command line, where `ps` shows it to every user of the host.
 */
import { parseArgs as parseNodeArgs, ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;
import type { Transport } from '../lib/transport';
import { redactSecrets, redactUrl } from '../lib/errors';
import { UsageError } from './command';

export type TransportName = 'amqp' | 'mqtt' | 'memory';

/** node:util parseArgs options of the broker; merged into each command's own. */
export const BROKER_OPTIONS = {
  transport: { type: 'string' },
  url: { type: 'string' },
  'client-id': { type: 'string' },
  prefix: { type: 'string' },
  exchange: { type: 'string' },
  'queue-type': { type: 'string' },
  'session-expiry': { type: 'string' },
  'timeout-ms': { type: 'string' },
} as const;

export const BROKER_USAGE = `Broker options:
  --transport amqp|mqtt|memory   default: from the URL's scheme, else amqp
  --url URL                      default: $COURIER_URL, else amqp://guest:guest@127.0.0.1:5672 or
                                 mqtt://127.0.0.1:1883 (prefer COURIER_URL: a password on the command
                                 line is visible to every user of the host; it is never printed)
  --client-id ID                 MQTT: the base of the client ids (a member's \`clientId\` to reach its sessions)
  --prefix P                     MQTT: the topic prefix (default courier)
  --session-expiry S             MQTT: expiry of a persistent session it resumes, s (default 604800: 7 days)
  --exchange X                   AMQP: the events exchange (default courier.events)
  --queue-type classic|quorum    AMQP: the type of the subscription's queues (default classic)
  --timeout-ms N                 how long connecting may take (default 15000)
`;

const DEFAULT_URLS = { amqp: 'amqp://guest:guest@127.0.0.1:5672', mqtt: 'mqtt://127.0.0.1:1883' } as const;

/** Which broker, and how to name things on it. */
export interface BrokerChoice {
  readonly transport: TransportName;
  readonly url?: string;
  readonly clientId?: string;
  readonly prefix?: string;
  readonly exchange?: string;
  readonly queueType?: 'classic' | 'quorum';
  readonly sessionExpirySeconds?: number;
  readonly timeoutMs: number;
}

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** What parseArgs gives for `options`: each option typed by its config (string, boolean, multiple). */
export type ParsedValues<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseNodeArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>>['values'];

/** parseArgs with usage errors as {@link UsageError}. */
export function parseCommandArgs<O extends ParseArgsOptionsConfig>(args: readonly string[], options: O, allowPositionals = true): { values: ParsedValues<O>; positionals: string[] } {
  try {
    const r = parseNodeArgs({ args: [...args], options, strict: true, allowPositionals });
    return { values: r.values as ParsedValues<O>, positionals: r.positionals };
  } catch (err) {
    // node:util's messages name the option and what is wrong; an argument value may be a URL.
    throw new UsageError(redactSecrets((err as Error).message));
  }
}

/** The broker named by parsed options (and COURIER_URL); throws {@link UsageError}. */
export function brokerChoice(values: Values, env: NodeJS.ProcessEnv = process.env): BrokerChoice {
  const url = (values.url as string | undefined) ?? (env.COURIER_URL || undefined);
  let transport = values.transport as string | undefined;
  if (transport === undefined) transport = url === undefined ? 'amqp' : /^amqps?:/i.test(url) ? 'amqp' : /^(mqtts?|wss?|tcp):/i.test(url) ? 'mqtt' : 'amqp';
  if (transport !== 'amqp' && transport !== 'mqtt' && transport !== 'memory') throw new UsageError(`--transport must be amqp, mqtt or memory, not "${transport}"`);
  if (url !== undefined && transport !== 'memory') {
    const ok = transport === 'amqp' ? /^amqps?:\/\//i.test(url) : /^(mqtts?|wss?|tcp):\/\//i.test(url);
    if (!ok) throw new UsageError(`"${redactUrl(url)}" is not an ${transport} URL`);
  }
  const queueType = values['queue-type'] as string | undefined;
  if (queueType !== undefined && queueType !== 'classic' && queueType !== 'quorum') throw new UsageError(`--queue-type must be classic or quorum, not "${queueType}"`);
  return {
    transport,
    url: transport === 'memory' ? undefined : url ?? DEFAULT_URLS[transport],
    clientId: values['client-id'] as string | undefined,
    prefix: values.prefix as string | undefined,
    exchange: values.exchange as string | undefined,
    queueType,
    sessionExpirySeconds: values['session-expiry'] === undefined ? undefined : integerOption(values['session-expiry'], 'session-expiry', 0, 1, 2 ** 32 - 1),
    timeoutMs: integerOption(values['timeout-ms'], 'timeout-ms', 15_000, 100, 600_000),
  };
}

/** An integer option in [min, max], or `fallback` when absent; throws {@link UsageError}. */
export function integerOption(raw: unknown, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const s = String(raw);
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${s}"`);
  return Number(s);
}

/** Where the command connects, for messages: the URL with its password as `***`. */
export function describeBroker(choice: BrokerChoice): string {
  return choice.transport === 'memory' ? 'memory (this process only)' : `${choice.transport} ${redactUrl(choice.url ?? '')}`;
}

/** The adapter could not be loaded (its broker client, an optional peer dependency, is missing). */
export class AdapterLoadError extends Error {
  constructor(transport: TransportName, cause: unknown) {
    super(`The ${transport} adapter could not be loaded: ${(cause as Error).message}`, { cause });
    this.name = 'AdapterLoadError';
  }
}

/** What a command may set beyond the broker options. */
export interface MakeTransportOptions {
  /**
   * AMQP: what a publish does while the connection is down. Default `'reject'`: a command fails
   * fast rather than wait. The relay buffers: a publish refused during a reconnect would count as
   * a failed attempt of its row, and a broker restart could then send rows to dead.
   */
  readonly whileDisconnected?: 'buffer' | 'reject';
}

/** A new, unconnected transport for `choice`; `role` names its connections (AMQP connection name). */
export async function makeTransport(choice: BrokerChoice, role: string, options: MakeTransportOptions = {}): Promise<Transport> {
  if (choice.transport === 'memory') {
    const { memoryTransport } = await import('../adapters/memory');
    return memoryTransport();
  }
  if (choice.transport === 'amqp') {
    let amqp: typeof import('../adapters/amqp');
    try {
      amqp = await import('../adapters/amqp');
    } catch (err) {
      throw new AdapterLoadError('amqp', err);
    }
    return amqp.amqpTransport({
      url: choice.url!,
      exchange: choice.exchange,
      queueType: choice.queueType,
      connectionName: `courier ${role}`,
      startTimeoutMs: choice.timeoutMs,
      connectTimeoutMs: Math.min(choice.timeoutMs, 10_000),
      whileDisconnected: options.whileDisconnected ?? 'reject',
    });
  }
  let mqtt: typeof import('../adapters/mqtt');
  try {
    mqtt = await import('../adapters/mqtt');
  } catch (err) {
    throw new AdapterLoadError('mqtt', err);
  }
  return mqtt.mqttTransport({
    url: choice.url!,
    prefix: choice.prefix,
    clientId: choice.clientId,
    sessionExpirySeconds: choice.sessionExpirySeconds,
    // Without --client-id the command makes no group session of its own except a dead-letter
    // reader's, which must then name the member (checked by the dead-letters command).
    allowGeneratedClientId: choice.clientId === undefined,
    startTimeoutMs: choice.timeoutMs,
    connectTimeoutMs: Math.min(choice.timeoutMs, 10_000),
  });
}

/** Writes a failure on stderr, redacted, and returns exit status 1. */
export function reportFailure(io: { stderr: NodeJS.WritableStream }, command: string, err: unknown): number {
  const e = err instanceof Error ? err : new Error(String(err));
  io.stderr.write(`courier ${command}: ${redactSecrets(`${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`)}\n`);
  return 1;
}

/** Runs `body` with a connected transport, closing it after (bounded) whatever happens. */
export async function withTransport<T>(choice: BrokerChoice, role: string, body: (t: Transport) => Promise<T>): Promise<T> {
  const t = await makeTransport(choice, role);
  // An adapter reports reconnects and refusals as 'error' events; the command reports its own failure.
  t.on('error', () => undefined);
  try {
    await t.connect();
    return await body(t);
  } finally {
    await t.close({ timeoutMs: 5000 }).catch(() => undefined);
  }
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function untilSignal(): { promise: Promise<string>; dispose(): void } {
  let dispose = () => undefined as void;
  const promise = new Promise<string>((resolve) => {
    const on = (s: string) => () => {
      dispose();
      resolve(s);
    };
    const int = on('SIGINT');
    const term = on('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
    dispose = () => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    };
  });
  return { promise, dispose: () => dispose() };
}

/**
 * Starting and ending one mqtt.js client: connect and subscribe within the start timeout (a lost
 * connection is waited for again, a refusal rejects at once with its typed error), a bounded
 * graceful end, and which broker a client is at.
 */
import type { MqttClient } from 'mqtt';
import {
  AccessRefusedError,
  AuthenticationError,
  brokerAddress,
  BrokerRefusedError,
  SessionTakenOverError,
  StartTimeoutError,
  redactSecrets,
  redactUrl,
} from '../../lib/errors';
import { forcedSubscription } from './mqtt-internals';

/** DISCONNECT reason code: another client connected with the same client id. */
export const SESSION_TAKEN_OVER = 0x8e;

/** CONNACK codes of a refused login: 3.1.1 bad user name or password, not authorized; MQTT 5 0x86, 0x87, bad authentication method. */
const AUTH_REFUSED: Record<4 | 5, readonly number[]> = { 4: [4, 5], 5: [0x86, 0x87, 0x8c] };

/** The AuthenticationError of a CONNACK that refused the login (mqtt.js puts its code on the error), else undefined. */
export function authenticationError(client: MqttClient, err: Error, urls: readonly string[]): AuthenticationError | undefined {
  const code = (err as { code?: unknown }).code;
  const version = client.options.protocolVersion === 4 ? 4 : 5;
  if (typeof code !== 'number' || !AUTH_REFUSED[version].includes(code)) return undefined;
  const at = currentUrl(client, urls);
  const broker = brokerAddress(at, defaultPort(new URL(at).protocol));
  return new AuthenticationError(client.options.username, broker, `${err.message} (CONNACK code ${code})`, { cause: err });
}

/**
 * Connect (manualConnect clients) and subscribe the filters at QoS 1, within `timeoutMs`: a
 * connection lost before the CONNACK or the SUBACK is waited for again (mqtt.js reconnects), a
 * refused login or subscription rejects at once.
 */
export async function startClient(client: MqttClient, filters: readonly string[], timeoutMs: number, urls: readonly string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const failures = new Set<string>();
  const connected = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new StartTimeoutError(timeoutMs, [`MQTT at ${urls.map(redactUrl).join(', ')}`, ...failures]));
      }, Math.max(0, deadline - Date.now()));
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        const refused = authenticationError(client, err, urls);
        if (refused) {
          cleanup();
          reject(refused);
        } else failures.add(redactSecrets(err.message));
      };
      const onDisconnect = (packet: { reasonCode?: number }) => {
        if (packet.reasonCode === SESSION_TAKEN_OVER) {
          cleanup();
          reject(new SessionTakenOverError(`MQTT session ${client.options.clientId} was taken over while connecting`));
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('disconnect', onDisconnect);
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('disconnect', onDisconnect);
    });
  const first = connected();
  client.connect();
  await first;
  if (!filters.length) return;
  let granted: Awaited<ReturnType<MqttClient['subscribeAsync']>>;
  for (let again = false; ; again = true) {
    try {
      // Again: mqtt.js counts a filter as subscribed once its SUBSCRIBE was sent, and would skip
      // it without the map form's `resubscribe`, resolving with no SUBACK at all.
      granted = again ? await client.subscribeAsync(forcedSubscription(filters)) : await client.subscribeAsync([...filters], { qos: 1 });
      break;
    } catch (err) {
      // mqtt.js fails a SUBSCRIBE in flight when the connection goes, and reconnects by itself.
      if (client.connected || client.disconnecting) throw err;
      failures.add(`subscription lost with the connection: ${redactSecrets((err as Error).message)}`);
      await connected();
    }
  }
  const refused = granted.filter((g) => g.qos >= 0x80);
  if (refused.length) {
    const what = refused.map((g) => `${g.topic} (reason 0x${g.qos.toString(16)})`).join(', ');
    const Err = refused.some((g) => (g.qos as number) === 0x87) ? AccessRefusedError : BrokerRefusedError;
    throw new Err(`MQTT broker refused subscription ${what}`, refused[0].topic, client.options.username);
  }
}

export function endClient(client: MqttClient | undefined, disconnect?: object): Promise<void> {
  if (!client) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, 2000);
    client.end(false, disconnect ?? {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export function currentUrl(client: MqttClient, urls: readonly string[]): string {
  const o = client.options;
  if (urls.length === 1) return urls[0];
  return `${o.protocol ?? 'mqtt'}://${o.host}:${o.port}`;
}

export function defaultPort(protocol: string): number {
  return protocol === 'mqtts:' || protocol === 'ssl:' ? 8883 : 1883;
}

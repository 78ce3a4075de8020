/**
 * Every place the MQTT adapter relies on mqtt.js (5.x) beyond its documented API, in one module.
 * Nothing else in adapters/mqtt/ casts a client or touches an `_` member. Each reach is
 * feature-checked on the client it is used on and has a fallback to the public API; the list,
 * with why and what each costs without it, is docs/client-internals.md, and
 * test/adapters/mqtt/mqtt-internals.spec.ts fails when an installed mqtt.js lacks one of them.
 *
 * 1. `client._sendPacket(packet)`: the PUBACK of a delivery once it is settled (see `pubackSender`).
 * 2. `handleMessage(packet, cb)` called back with an error (`DEFER_ACK`): mqtt.js then skips the
 *    PUBACK it would send and reads the next packet.
 * 3. `client.streamBuilder`: wrapped so that each connection's socket coalesces its writes.
 * 4. `client._writePacket(packet, cb)`: replaced for PUBLISH and success PUBACK by one-buffer encodings.
 * 5. `subscribe({ [filter]: { qos }, resubscribe: true })`: the map form's undocumented
 *    `resubscribe` key, which makes mqtt.js send a SUBSCRIBE it believes it already sent.
 */
import type { ISubscriptionMap, MqttClient } from 'mqtt';
import type { Duplex } from 'node:stream';
import { encodePuback, encodePublish, PublishPacketLike } from './publish-encoder';
import { coalesceWrites } from './write-coalescer';

/** The private members of mqtt.js's MqttClient that this module uses. */
interface ClientInternals {
  _sendPacket?(packet: object, cb?: () => void): void;
  _writePacket?(packet: PublishPacketLike, cb?: () => void): void;
  streamBuilder?: (client: MqttClient) => Duplex;
  readonly options: { protocolVersion?: number };
  readonly stream: { write(b: Buffer): boolean; once(event: 'drain', cb: () => void): void };
  readonly noop: unknown;
  emit(event: string, ...args: unknown[]): boolean;
}

/** The private parts, each present (true) or not on a client. */
export interface MqttInternalsFound {
  readonly sendPacket: boolean;
  readonly writePacket: boolean;
  readonly streamBuilder: boolean;
}

/** Names a test may turn off to run the public-API fallbacks (never set in production code). */
export const disabledForTests = new Set<keyof MqttInternalsFound>();

/** The feature check: which private parts `client` has (and are not turned off for a test). */
export function internalsOf(client: MqttClient): MqttInternalsFound {
  const c = client as unknown as ClientInternals;
  return {
    sendPacket: typeof c._sendPacket === 'function' && !disabledForTests.has('sendPacket'),
    writePacket: typeof c._writePacket === 'function' && !disabledForTests.has('writePacket'),
    streamBuilder: typeof c.streamBuilder === 'function' && !disabledForTests.has('streamBuilder'),
  };
}

/** Passed to mqtt.js's handleMessage callback: skip your PUBACK, the adapter sends it on settle. */
export const DEFER_ACK = Object.assign(new Error('courier: PUBACK deferred until the delivery is settled'), {
  courierDeferred: true,
});

/**
 * Sends the PUBACK of a QoS 1 message, the way mqtt.js's own publish handler does. Undefined when
 * `_sendPacket` is missing: the fallback is then to hold mqtt.js's handleMessage callback until
 * the delivery is settled (public API, correct, but mqtt.js reads no further packet meanwhile,
 * so the feed receives one message at a time).
 */
export function pubackSender(client: MqttClient): ((messageId: number) => void) | undefined {
  if (!internalsOf(client).sendPacket) return undefined;
  const c = client as unknown as Required<Pick<ClientInternals, '_sendPacket'>>;
  const v5 = client.options.protocolVersion === 5;
  return (messageId) => c._sendPacket(v5 ? { cmd: 'puback', messageId, reasonCode: 0 } : { cmd: 'puback', messageId });
}

/**
 * Has each socket of `client` coalesce one turn's writes into one (write-coalescer.ts). mqtt.js
 * keeps its stream builder private and calls it for every connection attempt, so this must run
 * before the first connect (manualConnect). Without it: the socket as mqtt.js builds it.
 */
export function coalesceSocketWrites(client: MqttClient): boolean {
  if (!internalsOf(client).streamBuilder) return false;
  const c = client as unknown as Required<Pick<ClientInternals, 'streamBuilder'>>;
  const build = c.streamBuilder;
  c.streamBuilder = (cl) => coalesceWrites(build(cl), () => cl.connected);
  return true;
}

/**
 * Has `client` write its PUBLISH and success PUBACK packets with encodePublish / encodePuback,
 * as one buffer each (publish-encoder.ts). What the replacement does besides the encoding is what
 * mqtt.js's own `_writePacket` does: emit 'packetsend', write, and call back at once, or on
 * 'drain' when the stream asked for it. Without `_writePacket`: nothing changes.
 */
export function encodePacketsOf(client: MqttClient): boolean {
  if (!internalsOf(client).writePacket) return false;
  const internal = client as unknown as Required<Pick<ClientInternals, '_writePacket'>> & ClientInternals;
  const original = internal._writePacket;
  internal._writePacket = function writePacket(this: ClientInternals, packet: PublishPacketLike, cb?: () => void): void {
    const version = this.options.protocolVersion;
    const bytes = packet.cmd === 'publish' ? encodePublish(packet, version) : packet.cmd === 'puback' ? encodePuback(packet, version) : undefined;
    if (bytes === undefined) return original.call(this, packet, cb);
    this.emit('packetsend', packet);
    const ok = this.stream.write(bytes);
    if (!ok && cb && cb !== this.noop) this.stream.once('drain', cb);
    else if (cb) cb();
  };
  return true;
}

/**
 * The SUBSCRIBE of `filters` at QoS 1 even if mqtt.js counts them as subscribed already (it does
 * once a SUBSCRIBE was sent, and would resolve with no SUBACK at all): the map form with the
 * `resubscribe` key its own reconnect logic uses. No fallback is needed for the key itself: an
 * mqtt.js without it sends the SUBSCRIBE or resolves at once, as without the key.
 */
export function forcedSubscription(filters: readonly string[]): ISubscriptionMap {
  const map = Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }]));
  return { ...map, resubscribe: true } as unknown as ISubscriptionMap;
}

/**
 * A PUBLISH packet as one buffer, byte for byte what mqtt-packet writes for it.
 *
 * mqtt-packet writes a PUBLISH piece by piece: about forty `stream.write` calls for one that
 * carries the CloudEvents attributes as user properties, a `Buffer.from([id])` per property, and
 * some thirty calls of its module-private `debug`, each allocating its arguments array although
 * logging is off. In Courier's MQTT publisher that was 9 KB of garbage and most of the CPU per
 * message (docs/benchmarks.md). This encoder measures the packet, allocates once and writes it.
 *
 * It writes what Courier publishes: a string topic, a Buffer payload, and (MQTT 5) the properties
 * contentType, responseTopic, correlationData, topicAlias, messageExpiryInterval and
 * userProperties with string values. For anything else it returns undefined and mqtt-packet
 * writes the packet, as before. mqtt-internals.ts (`encodePacketsOf`) hands mqtt.js these encodings.
 */
export function encodePublish(packet: PublishPacketLike, protocolVersion: number | undefined): Buffer | undefined {
  const { topic, payload } = packet;
  if (typeof topic !== 'string' || !Buffer.isBuffer(payload)) return undefined;
  const qos = packet.qos ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2) return undefined;
  const id = packet.messageId;
  if (qos > 0 && (typeof id !== 'number' || !(id >= 0 && id <= 0xffff))) return undefined;
  const v5 = protocolVersion === 5;
  const properties = packet.properties;

  // Lengths first, in mqtt-packet's property order (the object's own keys in order).
  let propsLength = 0;
  if (v5 && properties !== undefined) {
    if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) return undefined;
    for (const name in properties) {
      const value = (properties as Record<string, unknown>)[name];
      if (value === undefined) continue;
      const n = propertyLength(name, value);
      if (n < 0) return undefined;
      propsLength += n;
    }
  }
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes > 0xffff) return undefined;
  const length = 2 + topicBytes + (qos > 0 ? 2 : 0) + (v5 ? varIntBytes(propsLength) + propsLength : 0) + payload.length;
  if (length > MAX_REMAINING) return undefined;

  const out = Buffer.allocUnsafe(1 + varIntBytes(length) + length);
  out[0] = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0);
  let at = writeVarInt(out, 1, length);
  out.writeUInt16BE(topicBytes, at);
  at = out.write(topic, at + 2, 'utf8') + at + 2;
  if (qos > 0) at = out.writeUInt16BE(id!, at);
  if (v5) {
    at = writeVarInt(out, at, propsLength);
    if (properties !== undefined) {
      for (const name in properties) {
        const value = (properties as Record<string, unknown>)[name];
        if (value !== undefined) at = writeProperty(out, at, name, value);
      }
    }
  }
  payload.copy(out, at);
  return out;
}

/**
 * A PUBACK with reason code 0 (success) and no properties, the one a consumer sends per QoS 1
 * message, as mqtt-packet writes it: four bytes in MQTT 3.1.1 and 5 alike. Undefined otherwise.
 */
export function encodePuback(packet: { readonly messageId?: number; readonly reasonCode?: number; readonly properties?: unknown }, protocolVersion: number | undefined): Buffer | undefined {
  const id = packet.messageId;
  if (typeof id !== 'number' || !(id >= 0 && id <= 0xffff) || packet.properties !== undefined) return undefined;
  if (protocolVersion === 5 && packet.reasonCode !== 0) return undefined;
  const out = Buffer.allocUnsafe(4);
  out[0] = 0x40;
  out[1] = 2;
  out.writeUInt16BE(id, 2);
  return out;
}

/** The fields of mqtt-packet's IPublishPacket that the encoder reads. */
export interface PublishPacketLike {
  readonly cmd?: string;
  readonly reasonCode?: number;
  readonly topic?: unknown;
  readonly payload?: unknown;
  readonly qos?: number;
  readonly messageId?: number;
  readonly dup?: boolean;
  readonly retain?: boolean;
  readonly properties?: unknown;
}

/** The largest remaining length MQTT can express (four bytes of variable-length integer). */
const MAX_REMAINING = 268_435_455;

const PROPERTY_ID = {
  messageExpiryInterval: 0x02,
  contentType: 0x03,
  responseTopic: 0x08,
  correlationData: 0x09,
  topicAlias: 0x23,
  userProperties: 0x26,
} as const;

function stringLength(s: unknown): number {
  if (typeof s !== 'string') return -1;
  const n = Buffer.byteLength(s);
  return n <= 0xffff ? 2 + n : -1;
}

/** Bytes of one property on the wire; -1 for what this encoder leaves to mqtt-packet. */
function propertyLength(name: string, value: unknown): number {
  switch (name) {
    case 'contentType':
    case 'responseTopic': {
      const n = stringLength(value);
      return n < 0 ? -1 : 1 + n;
    }
    case 'correlationData':
      return Buffer.isBuffer(value) && value.length <= 0xffff ? 1 + 2 + value.length : -1;
    case 'topicAlias':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff ? 3 : -1;
    case 'messageExpiryInterval':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? 5 : -1;
    case 'userProperties': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return -1;
      let total = 0;
      for (const key of Object.getOwnPropertyNames(value)) {
        const k = stringLength(key);
        const v = stringLength((value as Record<string, unknown>)[key]);
        if (k < 0 || v < 0) return -1;
        total += 1 + k + v;
      }
      // mqtt-packet writes no packet at all for empty user properties: left to it, unchanged.
      return total > 0 ? total : -1;
    }
    default:
      return -1;
  }
}

function writeString(out: Buffer, at: number, s: string): number {
  const n = out.write(s, at + 2, 'utf8');
  out.writeUInt16BE(n, at);
  return at + 2 + n;
}

function writeProperty(out: Buffer, at: number, name: string, value: unknown): number {
  switch (name) {
    case 'contentType':
    case 'responseTopic':
      out[at] = PROPERTY_ID[name];
      return writeString(out, at + 1, value as string);
    case 'correlationData': {
      const b = value as Buffer;
      out[at] = PROPERTY_ID.correlationData;
      out.writeUInt16BE(b.length, at + 1);
      b.copy(out, at + 3);
      return at + 3 + b.length;
    }
    case 'topicAlias':
      out[at] = PROPERTY_ID.topicAlias;
      return out.writeUInt16BE(value as number, at + 1);
    case 'messageExpiryInterval':
      out[at] = PROPERTY_ID.messageExpiryInterval;
      return out.writeUInt32BE(value as number, at + 1);
    default: {
      // userProperties (propertyLength admitted nothing else)
      const pairs = value as Record<string, string>;
      for (const key of Object.getOwnPropertyNames(pairs)) {
        out[at] = PROPERTY_ID.userProperties;
        at = writeString(out, writeString(out, at + 1, key), pairs[key]);
      }
      return at;
    }
  }
}

function varIntBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarInt(out: Buffer, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out[at++] = byte;
  } while (n > 0);
  return at;
}

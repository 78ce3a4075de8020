/**
 * An AsyncAPI 3.0 document of Courier services, read from their decorators (no bus, no broker):
 * every message type (`@Message`) with a JSON Schema made from its class-validator rules
 * (class-validator-jsonschema), a channel per type and transport (AMQP: the routing key on the
 * events exchange; MQTT: the topic under the prefix, docs/wire-format.md), an operation per
 * `@Publish` method (send) and per `@Subscribe` handler (receive, with its queue / shared
 * subscription), and for a request type (`@Message(type, { reply })`) the handler's reply.
 * What a service publishes with `bus.publish()` or `ctx.publish()` is not in a decorator: declare
 * it with {@link AsyncApiService.sends}.
 */
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import { isCourierClass, messageMetadata, PayloadClass, publicationsOf, subscriberMetadata, subscriptionsOf } from '../../lib/decorators';
import { CourierError } from '../../lib/errors';
import { Headers } from '../../lib/transport';
import { workQueueName, instanceQueueName } from '../amqp/wire';
import { mqttFilterFor } from '../mqtt/mqtt-mapping';

/** class-transformer's own store of `@Type()` (what nested schemas need); not in its exports map's types. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { defaultMetadataStorage } = require('class-transformer/cjs/storage') as { defaultMetadataStorage: never };

export interface AsyncApiService {
  /** The service's name: its buses' `source`, the group of handlers that name none. */
  readonly name: string;
  /** Its handler and publisher classes (`@Subscriber`, `@Publisher`; other values are ignored). */
  readonly classes: readonly unknown[];
  /** Message classes it publishes outside `@Publish` methods (`bus.publish`, `ctx.publish`, `bus.request`). */
  readonly sends?: readonly PayloadClass[];
}

export interface AsyncApiOptions {
  readonly title?: string;
  /** The document's `info.version` (your API's version). Default `1.0.0`. */
  readonly version?: string;
  readonly description?: string;
  /** Which bindings to describe. Default both. */
  readonly transports?: ReadonlyArray<'amqp' | 'mqtt'>;
  /** AMQP broker `host:port` (default `localhost:5672`) and exchange (default `courier.events`). */
  readonly amqp?: { readonly host?: string; readonly exchange?: string };
  /** MQTT broker `host:port` (default `localhost:1883`) and topic prefix (default `courier`). */
  readonly mqtt?: { readonly host?: string; readonly prefix?: string };
}

/** The document (plain JSON data). */
export type AsyncApiDocument = Record<string, unknown> & { readonly asyncapi: '3.0.0' };

/** The classes among a module's exports that `bus.register()` would take (handler / publisher classes). */
export function courierClassesOf(moduleExports: Record<string, unknown>): Function[] {
  return Object.values(moduleExports).filter((v): v is Function => typeof v === 'function' && isCourierClass(v));
}

const ENVELOPE_HEADERS = {
  type: 'object',
  description: 'CloudEvents 1.0 attributes and Courier extensions (docs/wire-format.md); on AMQP in the headers table as cloudEvents_<name>, on MQTT 5 as user properties',
  properties: {
    [Headers.id]: { type: 'string', description: 'unique per message; consumers deduplicate by it' },
    [Headers.source]: { type: 'string', description: 'the publishing service' },
    [Headers.type]: { type: 'string', description: 'the message type' },
    [Headers.specversion]: { type: 'string', const: '1.0' },
    [Headers.time]: { type: 'string', format: 'date-time' },
    [Headers.correlationid]: { type: 'string', description: 'shared by a conversation; defaults to id' },
    [Headers.causationid]: { type: 'string', description: 'the id of the message whose handling published this one' },
    [Headers.traceparent]: { type: 'string', description: 'W3C trace context (CloudEvents distributed tracing extension)' },
    [Headers.tracestate]: { type: 'string' },
    [Headers.attempt]: { type: 'string', pattern: '^[1-9][0-9]*$', description: 'delivery attempt; absent means 1' },
  },
  required: [Headers.id, Headers.source, Headers.type, Headers.specversion, Headers.time],
};

/** A component key AsyncAPI accepts (`^[\w.\-]+$`). */
function key(s: string): string {
  return s.replace(/[^\w.-]/g, '_');
}

interface Sub {
  readonly service: string;
  readonly id: string;
  readonly pattern: string;
  readonly group?: string;
  readonly instance: boolean;
  readonly classes: PayloadClass[];
}

/** Builds the document of `services`. Throws a CourierError listing every class without `@Message`. */
export function asyncApiDocument(services: readonly AsyncApiService[], options: AsyncApiOptions = {}): AsyncApiDocument {
  const transports = options.transports ?? ['amqp', 'mqtt'];
  const exchange = options.amqp?.exchange ?? 'courier.events';
  const prefix = options.mqtt?.prefix ?? 'courier';
  const problems: string[] = [];
  const messageClasses = new Map<string, PayloadClass>();
  const noteMessage = (cls: PayloadClass | undefined, where: string): string | undefined => {
    const meta = messageMetadata(cls);
    if (!meta) {
      problems.push(`${where}: ${(cls as { name?: string } | undefined)?.name ?? String(cls)} has no @Message decorator`);
      return undefined;
    }
    const known = messageClasses.get(meta.type);
    if (known && known !== cls) problems.push(`${where}: type ${meta.type} is declared by two classes (${known.name}, ${cls!.name})`);
    messageClasses.set(meta.type, cls!);
    if (meta.reply) noteMessage(meta.reply, `${meta.type} reply`);
    return meta.type;
  };

  const sends: Array<{ service: string; id: string; type: string }> = [];
  const subs: Sub[] = [];
  for (const s of services) {
    for (const cls of s.classes) {
      if (typeof cls !== 'function' || !isCourierClass(cls)) continue;
      const group = subscriberMetadata(cls)?.group;
      for (const sub of subscriptionsOf(cls)) {
        const id = `${cls.name}.${sub.method}`;
        const types = sub.payloads.map((p) => noteMessage(p, `${s.name} ${id}`)).filter((t): t is string => !!t);
        if (!types.length) continue;
        const instance = sub.options.instance === true;
        subs.push({
          service: s.name,
          id,
          pattern: sub.options.pattern ?? types[0],
          group: sub.options.group === null || instance ? undefined : sub.options.group ?? group ?? s.name,
          instance,
          classes: sub.payloads as PayloadClass[],
        });
      }
      for (const pub of publicationsOf(cls)) {
        const type = noteMessage(pub.payload, `${s.name} ${cls.name}.${pub.method}`);
        if (type) sends.push({ service: s.name, id: `${cls.name}.${pub.method}`, type });
      }
    }
    for (const cls of s.sends ?? []) {
      const type = noteMessage(cls, `${s.name} sends`);
      if (type) sends.push({ service: s.name, id: `publish`, type });
    }
  }
  if (problems.length) throw new CourierError(`AsyncAPI document: ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);

  // Schemas of every class class-validator knows; only those the messages reach are kept.
  const all = validationMetadatasToSchemas({ refPointerPrefix: '#/components/schemas/', classTransformerMetadataStorage: defaultMetadataStorage }) as Record<string, Record<string, unknown>>;
  const schemas: Record<string, unknown> = {};
  const keep = (name: string) => {
    if (schemas[name] !== undefined) return;
    schemas[name] = all[name] ?? { type: 'object' };
    for (const m of JSON.stringify(schemas[name]).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) keep(m[1]);
  };
  const messages: Record<string, unknown> = {};
  for (const [type, cls] of [...messageClasses].sort(([a], [b]) => a.localeCompare(b))) {
    keep(cls.name);
    messages[key(type)] = {
      name: type,
      title: cls.name,
      contentType: 'application/json',
      headers: ENVELOPE_HEADERS,
      correlationId: { location: `$message.header#/${Headers.correlationid}` },
      payload: { $ref: `#/components/schemas/${cls.name}` },
    };
  }

  const servers: Record<string, unknown> = {};
  if (transports.includes('amqp')) servers.amqp = { host: options.amqp?.host ?? 'localhost:5672', protocol: 'amqp', protocolVersion: '0.9.1', description: `RabbitMQ; events on the topic exchange ${exchange}` };
  if (transports.includes('mqtt')) servers.mqtt = { host: options.mqtt?.host ?? 'localhost:1883', protocol: 'mqtt', protocolVersion: '5', description: `MQTT 5; topics under ${prefix}/` };

  const channels: Record<string, Record<string, unknown>> = {};
  const operations: Record<string, unknown> = {};
  /** The channel of a type or pattern on one transport, made on first use. */
  const channel = (t: 'amqp' | 'mqtt', pattern: string, classes: PayloadClass[]): string => {
    const id = key(`${t}.${pattern.replace(/\*/g, 'star').replace(/#/g, 'hash')}`);
    const ch = (channels[id] ??= {
      address: t === 'amqp' ? pattern : mqttFilterFor(prefix, pattern).filter,
      servers: [{ $ref: `#/servers/${t}` }],
      messages: {},
      ...(t === 'amqp'
        ? { bindings: { amqp: { is: 'routingKey', exchange: { name: exchange, type: 'topic', durable: true, autoDelete: false, vhost: '/' }, bindingVersion: '0.3.0' } } }
        : {}),
    });
    for (const cls of classes) (ch.messages as Record<string, unknown>)[key(messageMetadata(cls)!.type)] = { $ref: `#/components/messages/${key(messageMetadata(cls)!.type)}` };
    return id;
  };
  /** The dynamic channel a request's reply goes to (AMQP direct reply-to, MQTT 5 response topic). */
  const replyChannel = (t: 'amqp' | 'mqtt', reply: PayloadClass, requestType: string): string => {
    const id = key(`${t}.${requestType}.reply`);
    channels[id] ??= {
      address: null,
      description: t === 'amqp' ? 'the caller\'s direct reply-to (reply_to: amq.rabbitmq.reply-to)' : `the caller's response topic (${prefix}/_reply/<client id>)`,
      servers: [{ $ref: `#/servers/${t}` }],
      messages: { [key(messageMetadata(reply)!.type)]: { $ref: `#/components/messages/${key(messageMetadata(reply)!.type)}` } },
    };
    return id;
  };

  for (const t of transports) {
    for (const s of sends) {
      const cls = messageClasses.get(s.type)!;
      const ch = channel(t, s.type, [cls]);
      const opId = key(`${s.service}.${s.id}.send.${s.type}.${t}`);
      operations[opId] = {
        action: 'send',
        channel: { $ref: `#/channels/${ch}` },
        messages: [{ $ref: `#/channels/${ch}/messages/${key(s.type)}` }],
        summary: `${s.service} publishes ${s.type}${s.id === 'publish' ? '' : ` (${s.id})`}`,
        tags: [{ name: s.service }],
        'x-courier-service': s.service,
      };
    }
    for (const s of subs) {
      const ch = channel(t, s.pattern, s.classes);
      const queue = t === 'amqp'
        ? s.group ? workQueueName(s.group, s.id) : s.instance ? instanceQueueName(`${s.service}.<instanceId>`, s.id) : 'server-named, exclusive'
        : s.group ? `$share/${s.group}:${s.id}/${mqttFilterFor(prefix, s.pattern).filter}` : mqttFilterFor(prefix, s.pattern).filter;
      const op: Record<string, unknown> = {
        action: 'receive',
        channel: { $ref: `#/channels/${ch}` },
        messages: s.classes.map((c) => ({ $ref: `#/channels/${ch}/messages/${key(messageMetadata(c)!.type)}` })),
        summary: `${s.service} handles ${s.classes.map((c) => messageMetadata(c)!.type).join(', ')} (${s.id}, ${s.group ? `group ${s.group}` : s.instance ? 'per instance' : 'broadcast'})`,
        tags: [{ name: s.service }],
        'x-courier-service': s.service,
        'x-courier-handler': s.id,
        [t === 'amqp' ? 'x-courier-queue' : 'x-courier-subscription']: queue,
      };
      const reply = s.classes.length === 1 ? messageMetadata(s.classes[0])!.reply : undefined;
      if (reply) {
        const rc = replyChannel(t, reply, messageMetadata(s.classes[0])!.type);
        op.reply = {
          address: { location: t === 'amqp' ? '$message.header#/reply_to' : '$message.header#/responseTopic', description: t === 'amqp' ? 'the request\'s reply_to property' : 'the request\'s MQTT 5 Response Topic' },
          channel: { $ref: `#/channels/${rc}` },
          messages: [{ $ref: `#/channels/${rc}/messages/${key(messageMetadata(reply)!.type)}` }],
        };
      }
      operations[key(`${s.service}.${s.id}.receive.${t}`)] = op;
    }
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: options.title ?? services.map((s) => s.name).join(', '),
      version: options.version ?? '1.0.0',
      ...(options.description ? { description: options.description } : {}),
      tags: services.map((s) => ({ name: s.name })),
    },
    defaultContentType: 'application/json',
    servers,
    channels,
    operations,
    components: { messages, schemas },
  };
}


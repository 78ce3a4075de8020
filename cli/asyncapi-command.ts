/**
 * `courier asyncapi`: writes the AsyncAPI 3.0 document of services read from their decorators
 * (courier-bus/asyncapi). Each `--service NAME=MODULE` loads MODULE (a built JavaScript file or a
 * package, resolved from the working directory) and takes the handler and publisher classes it
 * exports; an export `asyncApiSends` (an array of message classes) adds what the service
 * publishes outside `@Publish` methods. MODULE must load the same courier-bus as this command
 * (the app's own node_modules/.bin/courier does), or its decorators are not seen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseCommandArgs } from './broker-options';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier asyncapi --service NAME=MODULE [--service NAME=MODULE ...] [options]

Writes an AsyncAPI 3.0 document (JSON) of the services' messages, channels and operations, read
from their decorators: no broker is contacted.

Options:
  --service NAME=MODULE   a service (its bus's source) and the module exporting its @Subscriber /
                          @Publisher classes: a path (relative to the working directory) or a
                          package name; an export asyncApiSends = [Class, ...] adds the types it
                          publishes with bus.publish() or ctx.publish(). Repeat per service.
  --transport amqp|mqtt|both   bindings to describe (default both)
  --amqp-host HOST:PORT   the AMQP server in the document (default localhost:5672)
  --exchange NAME         the events exchange (default courier.events)
  --mqtt-host HOST:PORT   the MQTT server in the document (default localhost:1883)
  --prefix PREFIX         the MQTT topic prefix (default courier)
  --title TEXT            info.title (default: the service names)
  --api-version V         info.version (default 1.0.0)
  --out FILE              write to FILE (default: stdout)
  --help, -h              this text

Exit status: 0 when the document was written, 1 when a module or a class is wrong, 2 for bad usage.
`;

const OPTIONS = {
  service: { type: 'string', multiple: true },
  transport: { type: 'string' },
  'amqp-host': { type: 'string' },
  exchange: { type: 'string' },
  'mqtt-host': { type: 'string' },
  prefix: { type: 'string' },
  title: { type: 'string' },
  'api-version': { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Parsed {
  readonly services: ReadonlyArray<{ name: string; module: string }>;
  readonly transports: ReadonlyArray<'amqp' | 'mqtt'>;
  readonly amqpHost?: string;
  readonly exchange?: string;
  readonly mqttHost?: string;
  readonly prefix?: string;
  readonly title?: string;
  readonly version?: string;
  readonly out?: string;
}

export function parseArgs(rest: readonly string[]): Parsed | 'help' {
  const { values } = parseCommandArgs(rest, OPTIONS, false);
  if (values.help) return 'help';
  const services = (values.service ?? []).map((s) => {
    const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(s);
    if (!m) throw new UsageError(`--service takes NAME=MODULE, not "${s}"`);
    return { name: m[1], module: m[2] };
  });
  if (!services.length) throw new UsageError('name at least one --service NAME=MODULE');
  const transport = values.transport ?? 'both';
  if (transport !== 'amqp' && transport !== 'mqtt' && transport !== 'both') throw new UsageError(`--transport must be amqp, mqtt or both, not "${transport}"`);
  return {
    services,
    transports: transport === 'both' ? ['amqp', 'mqtt'] : [transport],
    amqpHost: values['amqp-host'],
    exchange: values.exchange,
    mqttHost: values['mqtt-host'],
    prefix: values.prefix,
    title: values.title,
    version: values['api-version'],
    out: values.out,
  };
}

/** Loads a module from the working directory: require(), or import() for an ES module. */
async function load(spec: string): Promise<Record<string, unknown>> {
  const local = spec.startsWith('.') || spec.startsWith('/') || fs.existsSync(path.resolve(spec));
  const resolved = require.resolve(local ? path.resolve(spec) : spec, { paths: [process.cwd()] });
  try {
    return require(resolved) as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw err;
    return (await import(require('node:url').pathToFileURL(resolved).href)) as Record<string, unknown>;
  }
}

export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const o: Parsed = parsed.options;
  try {
    require('reflect-metadata');
    const { asyncApiDocument, courierClassesOf } = await import('courier-bus/asyncapi');
    const services = [];
    for (const s of o.services) {
      const exports = await load(s.module);
      const classes = courierClassesOf(exports);
      if (!classes.length) throw new Error(`${s.module} exports no @Subscriber / @Publisher class (or loads another copy of courier-bus)`);
      const sends = Array.isArray(exports.asyncApiSends) ? (exports.asyncApiSends as never[]) : [];
      services.push({ name: s.name, classes, sends });
    }
    const doc = asyncApiDocument(services, {
      title: o.title,
      version: o.version,
      transports: o.transports,
      amqp: { host: o.amqpHost, exchange: o.exchange },
      mqtt: { host: o.mqttHost, prefix: o.prefix },
    });
    const text = JSON.stringify(doc, null, 2) + '\n';
    if (o.out) {
      fs.writeFileSync(o.out, text);
      io.stderr.write(`wrote ${o.out}: ${Object.keys(doc.channels as object).length} channels, ${Object.keys(doc.operations as object).length} operations\n`);
    } else io.stdout.write(text);
    return 0;
  } catch (err) {
    io.stderr.write(`courier asyncapi failed: ${(err as Error).message}\n`);
    return 1;
  }
}

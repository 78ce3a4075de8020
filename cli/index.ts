/**
 * The `courier` command line (bin/courier.js runs its build, dist/cli/index.js): `courier
 * <command> [options]`. Each command is a module of its own in cli/ (cli/command.ts says what one
 * is), listed in COMMANDS and loaded only when it runs.
 */
import type { Command, CommandIO } from './command';

/** The commands: name, one line for the overview, and how to load the module. */
export const COMMANDS: Readonly<Record<string, { readonly summary: string; readonly load: () => Promise<Command> }>> = {
  demo: { summary: 'run the order and product services and check the invariants', load: () => import('./demo-command') },
  services: { summary: 'list the live service instances on a broker (discovery)', load: () => import('./services-command') },
  tail: { summary: 'print the messages of a pattern as they flow, taking work from no group', load: () => import('./tail-command') },
  publish: { summary: 'publish one message in a valid envelope', load: () => import('./publish-command') },
  'dead-letters': { summary: 'list, show, replay or purge the dead letters of one subscription', load: () => import('./dead-letters-command') },
  dashboard: { summary: 'serve a live web page of the services, their message types, the meter and dead letters', load: () => import('./dashboard-command') },
  metrics: { summary: "show running services' meter figures live, through the broker", load: () => import('./metrics-command') },
  asyncapi: { summary: 'write the AsyncAPI 3.0 document of services, from their decorators', load: () => import('./asyncapi-command') },
  relay: { summary: 'publish the rows of an outbox table (PostgreSQL or SQLite) until stopped', load: () => import('./relay-command') },
};

export const USAGE = `Usage: courier <command> [options]
       courier <command> --help
       courier --help | --version

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join('\n')}

Exit status: 0 when the command succeeded, 1 when it failed, 2 for bad usage.
`;

/** The installed package's version (its package.json, found by the package's own name). */
export function version(): string {
  return (require('courier-bus/package.json') as { version: string }).version;
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[], io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  if (name === '--version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const entry = name === undefined ? undefined : Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    io.stderr.write(`courier: ${name ? `unknown command "${name}"` : 'no command given'}\n\n${USAGE}`);
    return 2;
  }
  const command = await entry.load();
  return command.run(rest, io);
}

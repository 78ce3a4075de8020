/**
 * What every `courier` subcommand is: a module with a usage text and a `run` that takes the
 * arguments after the command's name and resolves to the exit status (0 done, 1 failed, 2 bad
 * usage). cli/index.ts loads a command's module only when it runs, so `--help` stays fast.
 */

/** Where a command writes. */
export interface CommandIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** A subcommand's module. */
export interface Command {
  /** The command's own `--help` text. */
  readonly USAGE: string;
  /** Runs the command with the arguments after its name. */
  run(args: readonly string[], io: CommandIO): Promise<number>;
}

/** Bad usage: the command prints the message and its usage on stderr and exits with status 2. */
export class UsageError extends Error {}

/**
 * A command's arguments parsed by `parse`, or the exit status the command ends with instead: on
 * bad usage ({@link UsageError}) the message and `usage` on stderr, status 2; on `'help'` the
 * usage on stdout, status 0. Any other error is thrown.
 */
export function parseOrExit<T>(parse: () => T | 'help', usage: string, io: CommandIO): { readonly options: T } | { readonly status: number } {
  let parsed: T | 'help';
  try {
    parsed = parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier: ${err.message}\n\n${usage}`);
    return { status: 2 };
  }
  if (parsed === 'help') {
    io.stdout.write(usage);
    return { status: 0 };
  }
  return { options: parsed };
}

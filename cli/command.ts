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

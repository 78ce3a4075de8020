/**
 * The headers of a dead letter, written in one place for every adapter (docs/wire-format.md,
 * docs/failure-policy.md).
 */
import { redactSecrets } from '../errors';
import { DeadLetterInfo, Headers } from '../transport';

/** What {@link deadLetterHeaders} needs besides the message's own headers. */
export interface DeadLetterHeaderInput extends DeadLetterInfo {
  /** The subscription's group; absent for a broadcast subscription. */
  readonly group?: string;
  /** The subscription's name inside its group (`Class.method`). */
  readonly name: string;
  /** The attempt the delivery was handled with (1-based): a message from a plain client has no attempt header of its own. */
  readonly attempt: number;
  /** When it was dead-lettered. Default: now. */
  readonly time?: Date;
}

/**
 * The value of `courierdeadqueue` for a subscription: `<group>/<name>`, or `<name>` for a
 * broadcast (docs/wire-format.md). The same on every transport, whatever its queue names are.
 */
export function deadLetterQueueLabel(group: string | undefined, name: string): string {
  return group ? `${group}/${name}` : name;
}

/**
 * The headers of the dead-letter copy of a message: its own headers, plus
 * - `courierdeadreason`: `input.reason`;
 * - `courierdeaderror`: `input.errorName`, removed when absent (a dead letter dead-lettered again
 *   does not keep the first error);
 * - `courierdeadmessage`: `input.errorMessage` with secrets redacted, removed when absent;
 * - `courierdeadqueue`: {@link deadLetterQueueLabel};
 * - `courierdeadtime`: ISO time;
 * - `courierattempt`: `input.attempt`.
 *
 * Returns a new object; `headers` is not changed.
 */
export function deadLetterHeaders(headers: Readonly<Record<string, string>>, input: DeadLetterHeaderInput): Record<string, string> {
  const out: Record<string, string> = {
    ...headers,
    [Headers.deadReason]: input.reason,
    [Headers.deadQueue]: deadLetterQueueLabel(input.group, input.name),
    [Headers.deadTime]: (input.time ?? new Date()).toISOString(),
    [Headers.attempt]: String(input.attempt),
  };
  if (input.errorName !== undefined && input.errorName !== '') out[Headers.deadError] = input.errorName;
  else delete out[Headers.deadError];
  if (input.errorMessage !== undefined && input.errorMessage !== '') out[Headers.deadMessage] = redactSecrets(input.errorMessage);
  else delete out[Headers.deadMessage];
  return out;
}

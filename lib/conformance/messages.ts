/** The messages the conformance suite publishes. */
import { Headers, OutgoingMessage } from '../transport';

/** A transport-level message `{ n }` with a minimal CloudEvents envelope; `headers` add or override. */
export function testMessage(topic: string, n: number, headers: Record<string, string> = {}): OutgoingMessage {
  return {
    topic,
    body: Buffer.from(JSON.stringify({ n })),
    headers: {
      [Headers.id]: `${topic}-${n}`,
      [Headers.type]: topic,
      [Headers.source]: 'courier-test',
      [Headers.specversion]: '1.0',
      [Headers.datacontenttype]: 'application/json',
      ...headers,
    },
  };
}

/** The `n` of a {@link testMessage}. */
export const bodyN = (d: { body: Buffer }): number => JSON.parse(d.body.toString()).n;

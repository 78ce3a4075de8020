/** How the operating commands print messages: one block of text per message, or one JSON object per line. */
import { redactSecrets } from '../lib/errors';

/** A body as JSON when it parses, else as UTF-8 text (binary bytes as base64 under `base64`). */
export function bodyValue(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return Buffer.from(text, 'utf8').equals(body) ? text : { base64: body.toString('base64') };
  }
}

/** Headers as printed: sorted, with any URL password redacted (a header may carry a connection string). */
export function printableHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(headers).sort()) out[k] = redactSecrets(headers[k]);
  return out;
}

/** A message as a block of text: a title line, then headers and body, indented. */
export function messageBlock(title: string, headers: Readonly<Record<string, string>>, body: Buffer, skip: ReadonlySet<string> = new Set()): string {
  const lines = [title];
  const h = printableHeaders(headers);
  const keys = Object.keys(h).filter((k) => !skip.has(k));
  if (keys.length) lines.push(`  headers: ${keys.map((k) => `${k}=${h[k]}`).join(' ')}`);
  const b = bodyValue(body);
  lines.push(`  body: ${redactSecrets(typeof b === 'string' ? b : JSON.stringify(b))}`);
  return lines.join('\n') + '\n';
}

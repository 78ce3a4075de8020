/**
 * Signed (and optionally encrypted) messages, as a wrapper around any transport: adapters know
 * nothing of it.
 *
 * Signature: HMAC-SHA256 over the body and the envelope attributes (not over what transports change
 * on the way: the attempt count and the dead-letter headers), in the header `couriersignature` as
 * `v1;kid=<key id>;sig=<base64url>`. Rotation: sign with `currentKeyId`, verify with any key in
 * `keys`; add the new key everywhere, then switch `currentKeyId`, then drop the old key.
 *
 * Encryption (optional): AES-256-GCM of the body, `iv | tag | ciphertext`, key id in the header
 * `courierencryption`. Encrypt-then-sign, so a tampered ciphertext is refused before decryption.
 *
 * A delivery that is unsigned, signed with an unknown key, tampered with or undecryptable never
 * reaches the handler: it is dead-lettered with reason `malformed` and a SignatureError.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CourierError, SignatureError } from './errors';
import { Delivery, DeliveryHandler, Headers, OutgoingMessage, PublishOptions, ReceivedMessage, ReplyMessage, Subscription, SubscriptionSpec, Transport } from './transport';
import { TransportWrapper, withDelivery } from './transport-wrapper';

export interface SigningOptions {
  /** Key id -> secret (HMAC key; for encryption, exactly 32 bytes). */
  readonly keys: Readonly<Record<string, Buffer>>;
  /** The key new messages are signed (and encrypted) with. */
  readonly currentKeyId: string;
  /** Encrypt bodies with AES-256-GCM. Default false. */
  readonly encrypt?: boolean;
}

const ENCRYPTION = 'courierencryption';
const SIGNED = [
  Headers.id,
  Headers.source,
  Headers.type,
  Headers.specversion,
  Headers.time,
  Headers.datacontenttype,
  Headers.correlationid,
  Headers.causationid,
  Headers.traceparent,
  Headers.tracestate,
  Headers.replyError,
  ENCRYPTION,
];

export class SigningTransport extends TransportWrapper {
  constructor(inner: Transport, private readonly options: SigningOptions) {
    super(inner);
    const problems: string[] = [];
    if (!options.keys[options.currentKeyId]) problems.push(`currentKeyId "${options.currentKeyId}" is not in keys`);
    if (options.encrypt) {
      for (const [kid, key] of Object.entries(options.keys)) {
        if (key.length !== 32) problems.push(`key "${kid}" must be 32 bytes for AES-256-GCM`);
      }
    }
    if (problems.length) throw new CourierError(`Invalid signing options: ${problems.join('; ')}`);
  }
  override publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    return this.inner.publish(this.seal(message), options);
  }
  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.inner.subscribe(spec, this.guard(handler));
  }
  override async request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    const reply = await this.inner.request(this.seal(message), options);
    return this.open(reply);
  }
  private seal<M extends { body: Buffer; headers: Readonly<Record<string, string>> }>(m: M): M {
    const kid = this.options.currentKeyId;
    const key = this.options.keys[kid];
    let body = m.body;
    const headers: Record<string, string> = { ...m.headers };
    if (this.options.encrypt) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(body), cipher.final()]);
      body = Buffer.concat([iv, cipher.getAuthTag(), ct]);
      headers[ENCRYPTION] = kid;
    }
    headers[Headers.signature] = `v1;kid=${kid};sig=${mac(key, body, headers).toString('base64url')}`;
    return { ...m, body, headers };
  }

  /** Verifies and decrypts; throws SignatureError. */
  private open<M extends { body: Buffer; headers: Readonly<Record<string, string>> }>(m: M): M {
    const sig = m.headers[Headers.signature];
    if (!sig) throw new SignatureError('Message is not signed');
    const parts = /^v1;kid=([^;]+);sig=([A-Za-z0-9_-]+)$/.exec(sig);
    if (!parts) throw new SignatureError('Signature header is malformed');
    const key = this.options.keys[parts[1]];
    if (!key) throw new SignatureError(`Message is signed with unknown key "${parts[1]}"`);
    const expected = mac(key, m.body, m.headers);
    const given = Buffer.from(parts[2], 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new SignatureError('Signature does not match: the message was altered or signed with another key');
    }
    const encKid = m.headers[ENCRYPTION];
    if (!encKid) {
      if (this.options.encrypt) throw new SignatureError('Message is not encrypted');
      return m;
    }
    const encKey = this.options.keys[encKid];
    if (!encKey || m.body.length < 28) throw new SignatureError(`Cannot decrypt with key "${encKid}"`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', encKey, m.body.subarray(0, 12));
      decipher.setAuthTag(m.body.subarray(12, 28));
      const body = Buffer.concat([decipher.update(m.body.subarray(28)), decipher.final()]);
      return { ...m, body };
    } catch (cause) {
      throw new SignatureError('Decryption failed', { cause });
    }
  }

  private guard(handler: DeliveryHandler): DeliveryHandler {
    return async (d: Delivery) => {
      let opened: Delivery;
      try {
        const { body } = this.open(d);
        // A dead letter keeps the bytes as they came (still sealed): nothing leaks in clear.
        opened = withDelivery(d, { body, reply: (r: ReplyMessage) => d.reply(this.seal(r)) });
      } catch (err) {
        const e = err as Error;
        return d.deadLetter({ reason: 'malformed', errorName: e.name, errorMessage: e.message });
      }
      return handler(opened);
    };
  }
}

function mac(key: Buffer, body: Buffer, headers: Readonly<Record<string, string>>): Buffer {
  const h = createHmac('sha256', key);
  for (const name of SIGNED) {
    const v = headers[name];
    if (v !== undefined) h.update(`${name}=${v.length}:${v}\n`);
  }
  h.update(body);
  return h.digest();
}

/** Wraps a transport so that everything it sends is signed (and encrypted) and everything it receives is verified. */
export function signedTransport(inner: Transport, options: SigningOptions): SigningTransport {
  return new SigningTransport(inner, options);
}

/** Message ids: random UUIDs, made cheaply (codec.ts stamps one on every message). */
import { randomFillSync } from 'node:crypto';

/** Two ASCII hex digits per byte value. */
const HEX_PAIRS = Buffer.from(Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')).join(''), 'latin1');
/** Random bytes for 256 UUIDs at a time, from the CSPRNG (as crypto.randomUUID caches 128). */
const uuidEntropy = Buffer.allocUnsafeSlow(16 * 256);
let uuidAt = uuidEntropy.length;
const uuidText = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');
/** Where the hex digits of each of the 16 bytes go in the text (the dashes stay). */
const UUID_AT = new Uint8Array([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]);

/**
 * A random (version 4, RFC 9562) UUID, as crypto.randomUUID() makes it, written into one
 * buffer and read as one flat string: randomUUID concatenates twenty pieces (about 600 bytes
 * of string objects per message, a tree held until the transport writes it).
 */
export function newUuid(): string {
  if (uuidAt === uuidEntropy.length) {
    randomFillSync(uuidEntropy);
    uuidAt = 0;
  }
  const r = uuidEntropy;
  const at = uuidAt;
  uuidAt += 16;
  r[at + 6] = (r[at + 6] & 0x0f) | 0x40; // version 4
  r[at + 8] = (r[at + 8] & 0x3f) | 0x80; // variant 10
  const out = uuidText;
  for (let i = 0; i < 16; i++) {
    const b = r[at + i] << 1;
    const o = UUID_AT[i];
    out[o] = HEX_PAIRS[b];
    out[o + 1] = HEX_PAIRS[b + 1];
  }
  return out.toString('latin1', 0, 36);
}

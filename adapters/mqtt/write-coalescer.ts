import type { Duplex } from 'node:stream';

/** Room for a turn's writes before a larger pool is taken. */
const POOL_BYTES = 64 * 1024;

type WriteCallback = (err?: Error | null) => void;

/**
 * Makes the many small writes of one event-loop turn leave as one socket write.
 *
 * mqtt-packet writes a packet piece by piece (a byte, a length, each user property's name and
 * value...): some forty `stream.write` calls for a PUBLISH that carries the CloudEvents
 * attributes, four for a PUBACK. It corks the socket around each packet, so they leave in one
 * `writev`, but Node's stream machinery still buffers, converts and hands libuv every piece on
 * its own: in a busy producer that was a fifth of the CPU (`writevGeneric`, `writeOrBuffer`,
 * `writev`), in a consumer a PUBACK's share of it.
 *
 * After this, `write` copies each piece into a pool buffer and returns at once; in the check
 * phase of the same turn (`setImmediate`) everything written in the turn goes to the socket as
 * one buffer. Bytes leave in the order written; `end()` sends what is pending first; a destroyed
 * socket drops it (the packets are in mqtt.js's outgoing store and are re-sent on reconnect like
 * any others). `write` returns false only while the socket itself wants a 'drain', so that
 * mqtt.js, which waits for 'drain' on a false, is always woken. While `active()` is false (mqtt.js
 * connecting, re-sending its store) writes pass straight through, in order.
 */
export function coalesceWrites(socket: Duplex, active: () => boolean = () => true): Duplex {
  const write = socket.write.bind(socket) as (chunk: Buffer, cb?: WriteCallback) => boolean;
  const end = socket.end.bind(socket) as (...args: unknown[]) => Duplex;
  let pool = Buffer.allocUnsafe(POOL_BYTES);
  let start = 0; // pool[start, used) is written but not yet flushed
  let used = 0;
  let callbacks: WriteCallback[] | undefined;
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    if (used === start) return;
    const chunk = pool.subarray(start, used);
    start = used;
    const cbs = callbacks;
    callbacks = undefined;
    if (socket.destroyed) {
      cbs?.forEach((cb) => cb(new Error('socket destroyed before the write was flushed')));
      return;
    }
    write(chunk, cbs && ((err) => cbs.forEach((cb) => cb(err))));
  };

  const room = (bytes: number): void => {
    if (pool.length - used >= bytes) return;
    // The pending bytes move to a new pool; the old one stays with the socket for what it holds.
    const pending = pool.subarray(start, used);
    pool = Buffer.allocUnsafe(Math.max(POOL_BYTES, 2 * (pending.length + bytes)));
    pending.copy(pool, 0);
    start = 0;
    used = pending.length;
  };

  socket.write = function coalescedWrite(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    if (!active()) {
      flush();
      return (write as (...args: unknown[]) => boolean)(chunk, encoding, cb);
    }
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (typeof chunk === 'string') {
      const enc = (typeof encoding === 'string' ? encoding : 'utf8') as BufferEncoding;
      room(Buffer.byteLength(chunk, enc));
      used += pool.write(chunk, used, enc);
    } else {
      const bytes = chunk as Uint8Array;
      room(bytes.length);
      pool.set(bytes, used);
      used += bytes.length;
    }
    if (typeof cb === 'function') (callbacks ??= []).push(cb as WriteCallback);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return !socket.writableNeedDrain;
  } as Duplex['write'];

  socket.end = function coalescedEnd(...args: unknown[]): Duplex {
    flush();
    return end(...args);
  } as Duplex['end'];

  return socket;
}

/** amqp-options.ts: defaults in one place, and every problem of the options reported at once. */
import assert from 'node:assert/strict';
import { resolveOptions } from '../../../adapters/amqp/amqp-options';
import { StartupError } from '../../../lib';

describe('amqp options', () => {
  it('defaults: a replay from a Date attaches 10 s early (replayClockMarginMs)', () => {
    assert.equal(resolveOptions({ url: 'amqp://localhost' }).replayClockMarginMs, 10_000);
    assert.equal(resolveOptions({ url: 'amqp://localhost', replayClockMarginMs: 0 }).replayClockMarginMs, 0);
  });

  it('every problem at once, in one StartupError', () => {
    assert.throws(
      () => resolveOptions({ url: 'http://localhost', replayClockMarginMs: -1, heartbeatSeconds: -1 }),
      (err: unknown) => {
        assert.ok(err instanceof StartupError);
        assert.match(err.message, /url must start with amqp:\/\//);
        assert.match(err.message, /replayClockMarginMs must be a number >= 0/);
        assert.match(err.message, /heartbeatSeconds must be >= 0/);
        return true;
      },
    );
  });
});

import assert from 'node:assert/strict';
import { DeadlineTimer } from '../../lib/deadline-timer';
import { sleep, waitFor } from '../helpers/wait';

describe('DeadlineTimer', () => {
  it('fires once, by the earliest deadline it was armed for; a later one does not postpone it; stop() disarms', async () => {
    const fired: number[] = [];
    const start = performance.now();
    const timer = new DeadlineTimer(() => fired.push(performance.now() - start));
    timer.armBy(start + 60_000);
    timer.armBy(start + 30); // earlier: re-armed
    timer.armBy(start + 30_000); // later: ignored
    await waitFor(() => fired.length > 0, 5000, 'the timer armed for 30 ms');
    await sleep(50);
    assert.equal(fired.length, 1, 'fired once');
    assert.ok(fired[0] >= 25, `fired after ${fired[0].toFixed(1)} ms, not before its deadline`);
    timer.armBy(performance.now() + 20); // armed again after firing
    timer.stop();
    await sleep(60);
    assert.equal(fired.length, 1, 'stopped before its deadline');
  });

  it('reads deadlines on the clock it is given', async () => {
    let fired = false;
    const timer = new DeadlineTimer(() => (fired = true), { now: Date.now, unref: true });
    timer.armBy(Date.now() + 20);
    await waitFor(() => fired, 5000, 'the timer armed on Date.now');
  });
});

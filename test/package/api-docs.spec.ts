/**
 * `npm run docs` builds the API reference with typedoc (typedoc.json). Every type the public API
 * names is either exported or deliberately hidden (`@internal`, or the memory broker's internals
 * listed in `intentionallyNotExported`): typedoc.json treats warnings as errors, so one more
 * unexported type on the public surface fails this test. Validation only (`--emit none`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

describe('the API reference (typedoc)', function () {
  this.timeout(120_000);

  it('builds with no warnings', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none'], { cwd: ROOT, encoding: 'utf8', timeout: 110_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, /\[warning\]/);
  });
});

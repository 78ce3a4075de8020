import assert from 'node:assert/strict';
import { PendingEntry, PendingTable } from '../../lib/pending-table';
import { sleep } from '../helpers/wait';

class Entry implements PendingEntry {
  id = '';
  slot = 0;
  constructor(
    readonly name: string,
    readonly deadline: number,
  ) {}
}

describe('PendingTable', () => {
  it('finds an entry by its id only while it is stored; a reused slot does not answer to the old id', () => {
    const table = new PendingTable<Entry>('p.', () => assert.fail('nothing expires'));
    const far = performance.now() + 60_000;
    const a = new Entry('a', far);
    const b = new Entry('b', far);
    const idA = table.add(a);
    const idB = table.add(b);
    assert.notEqual(idA, idB);
    assert.equal(table.get(idA), a);
    assert.equal(table.get(idB), b);
    assert.equal(table.size, 2);
    assert.equal(table.delete(a), true);
    assert.equal(table.delete(a), false, 'twice');
    assert.equal(table.get(idA), undefined);
    const c = new Entry('c', far);
    const idC = table.add(c);
    assert.equal(c.slot, a.slot, 'the freed slot is reused');
    assert.equal(table.get(idA), undefined, 'a late answer to the old id finds nothing');
    assert.equal(table.get(idC), c);
    for (const bad of [undefined, 42, '', 'p.', 'p.x.1', 'q.0.1', `${idC}9`, idC.replace('p.', 'p.99')]) {
      assert.equal(table.get(bad), undefined, `get(${String(bad)})`);
    }
    assert.deepEqual(table.entries().map((e) => e.name), ['b', 'c'], 'oldest id first');
    table.delete(b);
    table.delete(c);
    assert.equal(table.size, 0);
  });

  it('one timer expires each entry at its deadline, oldest first, and leaves the others', async () => {
    const expired: string[] = [];
    const table = new PendingTable<Entry>('t.', (e) => expired.push(e.name));
    const now = performance.now();
    const late = new Entry('late', now + 60_000);
    const gone = new Entry('gone', now + 10);
    table.add(gone);
    table.add(new Entry('second', now + 40));
    table.add(late);
    table.add(new Entry('first', now + 20));
    table.delete(gone); // its slot, before that of 'second', goes to 'third'
    table.add(new Entry('third', now + 40));
    await sleep(100);
    // 'first' alone at 20 ms; 'second' and 'third' in one sweep at 40 ms, in the order they were added.
    assert.deepEqual(expired, ['first', 'second', 'third']);
    assert.equal(table.size, 1);
    assert.equal(table.get(late.id), late, 'not yet due');
    table.delete(late);
  });
});

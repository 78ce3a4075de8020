/**
 * A list of records linked through their own `prev` / `next` fields, oldest first: adding and
 * removing allocate nothing. For the records of operations in flight on a per-message path,
 * where a Set would do: a Set whose entries come and go rehashes into a new table every so often,
 * and V8 links each old table to its successor; once one of them is promoted, that dead chain
 * keeps young tables and their records alive through every scavenge until the next full GC, and
 * the young generation grows (docs/benchmarks.md). A record is in at most one list at a time.
 */
export interface Linked<T> {
  prev: T | undefined;
  next: T | undefined;
}

export class LinkedList<T extends Linked<T>> {
  head: T | undefined = undefined;
  private tail: T | undefined = undefined;
  size = 0;

  add(item: T): void {
    item.prev = this.tail;
    item.next = undefined;
    if (this.tail) this.tail.next = item;
    else this.head = item;
    this.tail = item;
    this.size++;
  }

  /** Removes `item`; false when it was not in the list. Its links are cleared (a dead record keeps nothing alive). */
  delete(item: T): boolean {
    if (item.prev === undefined && this.head !== item) return false;
    if (item.prev) item.prev.next = item.next;
    else this.head = item.next;
    if (item.next) item.next.prev = item.prev;
    else this.tail = item.prev;
    item.prev = item.next = undefined;
    this.size--;
    return true;
  }

  /** The records, oldest first, as an array (safe to delete from while walking it). */
  toArray(): T[] {
    const all: T[] = [];
    for (let p = this.head; p; p = p.next) all.push(p);
    return all;
  }
}

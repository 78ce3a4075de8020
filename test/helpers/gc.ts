import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A full garbage collection without starting node with --expose-gc, for tests that assert what
 * memory is held: RSS alone follows the collector's laziness, the heap after a full GC does not.
 */
export function fullGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Heap in use right after a full collection, in MB. */
export function heldHeapMb(gc: () => void): number {
  gc();
  return Math.round(process.memoryUsage().heapUsed / 1024 / 1024);
}

/**
 * Summarises a .heapsnapshot (bench/diagnostics.ts, BENCH_HEAP_SNAPSHOT): live objects grouped by
 * type and name, largest self size first. Mid-run, that is the state each message in flight keeps.
 *
 *   node -r ts-node/register/transpile-only bench/snapshot-summary.ts FILE [top]
 */
import * as fs from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
const meta = snap.snapshot.meta;
const fields: string[] = meta.node_fields;
const types: string[] = meta.node_types[0];
const width = fields.length;
const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
const groups = new Map<string, { count: number; bytes: number }>();
const nodes: number[] = snap.nodes;
for (let i = 0; i < nodes.length; i += width) {
  const type = types[nodes[i + iType]];
  const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(string)' : snap.strings[nodes[i + iName]];
  const key = `${type} ${name}`.slice(0, 90);
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += nodes[i + iSize];
  groups.set(key, g);
}
const rows = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(topArg ?? 40));
const total = [...groups.values()].reduce((s, g) => s + g.bytes, 0);
console.log(`total ${(total / 1048576).toFixed(1)} MB in ${nodes.length / width} objects`);
for (const [key, g] of rows) console.log(`${(g.bytes / 1024).toFixed(0).padStart(8)} KB ${String(g.count).padStart(8)}  ${key}`);

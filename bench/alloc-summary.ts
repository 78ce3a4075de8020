/**
 * Summarises a .heapprofile written with BENCH_ALLOC_PROF (bench/diagnostics.ts): megabytes
 * allocated per function, self or inclusive, dependencies shortened to their package path.
 *   node -r ts-node/register/transpile-only bench/alloc-summary.ts FILE [top] [--inclusive]
 */
import * as fs from 'node:fs';

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children?: Node[];
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
if (!file) throw new Error('usage: alloc-summary.ts FILE [top] [--inclusive]');
const top = Number(args.find((a) => /^\d+$/.test(a)) ?? 30);
const inclusive = args.includes('--inclusive');
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { head: Node };

const name = (n: Node) => {
  const url = n.callFrame.url.replace(/.*node_modules\//, '').replace(/.*\/bench\/\.build\//, '');
  return `${n.callFrame.functionName || '(anonymous)'}  ${url}:${n.callFrame.lineNumber + 1}`;
};
const sums = new Map<string, number>();
let total = 0;
/** Returns the bytes under `n`; counts a function once per stack (recursion). */
function walk(n: Node, onStack: Set<string>): number {
  const key = name(n);
  total += n.selfSize;
  let under = n.selfSize;
  const inner = new Set(onStack).add(key);
  for (const c of n.children ?? []) under += walk(c, inner);
  const add = inclusive ? (onStack.has(key) ? 0 : under) : n.selfSize;
  sums.set(key, (sums.get(key) ?? 0) + add);
  return under;
}
walk(profile.head, new Set());
console.log(`${(total / 1048576).toFixed(1)} MB sampled; by function (${inclusive ? 'inclusive' : 'self'}):`);
for (const [k, v] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1048576).toFixed(1).padStart(8)} MB  ${k}`);

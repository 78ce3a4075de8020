#!/usr/bin/env node
// `npm run build` (also run by `prepare` and `prepack`): compiles lib/, adapters/, cli/ and samples/
// (the `courier` command) to CommonJS in dist/ with tsconfig.build.json, then writes an ESM
// wrapper (index.mjs + index.d.mts) beside each entry point of the package's `exports`.
//
// CJS plus wrappers rather than a dual build: one copy of the code runs whether an app requires
// or imports Courier (or both, through its dependencies), so the decorator metadata, the
// reflect-metadata store and `instanceof CourierError` stay one and the same.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const ENTRIES = ['lib', 'lib/adapter-kit', 'lib/conformance', 'lib/gateway', 'lib/dashboard', 'adapters/memory', 'adapters/amqp', 'adapters/mqtt', 'adapters/postgres', 'adapters/sqlite', 'adapters/nest', 'adapters/otel', 'adapters/prometheus', 'adapters/asyncapi'];

fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

// The dashboard's page (plain HTML, JS and CSS, served as they are) beside its compiled server.
fs.cpSync(path.join(root, 'lib/dashboard/page'), path.join(dist, 'lib/dashboard/page'), { recursive: true });

for (const entry of ENTRIES) {
  const dir = path.join(dist, entry);
  // The adapters' clients are dev dependencies here, so every entry loads at build time.
  const names = Object.keys(require(path.join(dir, 'index.js'))).filter((n) => n !== '__esModule' && n !== 'default');
  if (names.length === 0) throw new Error(`build: ${entry} exports nothing`);
  fs.writeFileSync(
    path.join(dir, 'index.mjs'),
    `// ESM entry point: the CommonJS build, re-exported (scripts/build.js says why).\n` +
      // createRequire rather than `import cjs from './index.js'`: Node 20 reports a CommonJS module
      // that throws while imported (a missing adapter client) as an uncaught error besides
      // rejecting the import; a require() in the module body only rejects the import.
      `import { createRequire } from 'node:module';\n\nconst cjs = createRequire(import.meta.url)('./index.js');\n\nexport const {\n${names.map((n) => `  ${n},`).join('\n')}\n} = cjs;\n`,
  );
  fs.writeFileSync(path.join(dir, 'index.d.mts'), `export * from './index.js';\n`);
}

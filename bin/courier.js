#!/usr/bin/env node
// The `courier` command: runs the compiled command line in dist/ (`npm run build`; `npm ci` and
// `npm pack` build it through the `prepare` and `prepack` scripts). No compiler at run time.
'use strict';
const path = require('node:path');

let cli;
try {
  cli = require('../dist/cli/index.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(path.join('dist', 'cli', 'index.js'))) {
    console.error('courier: the build is missing (dist/cli/index.js): run `npm run build` first');
    process.exit(1);
  }
  throw err;
}

cli.main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    // Broker clients may hold timers (reconnects, keep-alives) after close: do not wait for them.
    setImmediate(() => process.exit(status));
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

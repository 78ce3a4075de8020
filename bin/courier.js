#!/usr/bin/env node
// The `courier` command. Courier ships TypeScript sources; ts-node compiles them on the fly
// (transpile only: type checking is `npm run typecheck`'s job, and would cost seconds here).
'use strict';
const path = require('node:path');

require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
const { main } = require('../samples/cli');

main(process.argv.slice(2)).then(
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

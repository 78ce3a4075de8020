// Run in a project without amqplib and mqtt: each adapter import must fail with one clear error.
'use strict';
const out = {};
for (const adapter of ['amqp', 'mqtt']) {
  try {
    require(`courier-bus/${adapter}`);
    out[`require ${adapter}`] = 'loaded';
  } catch (err) {
    out[`require ${adapter}`] = { name: err.name, code: err.code, packageName: err.packageName, message: err.message };
  }
}
(async () => {
  for (const adapter of ['amqp', 'mqtt']) {
    try {
      await import(`courier-bus/${adapter}`);
      out[`import ${adapter}`] = 'loaded';
    } catch (err) {
      out[`import ${adapter}`] = { name: err.name, code: err.code, packageName: err.packageName, message: err.message };
    }
  }
  out.memory = typeof require('courier-bus/memory').memoryTransport;
  console.log(JSON.stringify(out));
})();

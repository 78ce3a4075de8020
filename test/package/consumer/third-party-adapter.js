// The consumer test's third-party adapter: a transport of its own, written on courier-bus/adapter-kit,
// checked with courier-bus/conformance under node's own test runner (node:test): no mocha installed.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { TransportWrapper } = require('courier-bus');
const { memoryTransport, MemoryBroker } = require('courier-bus/memory');
const { SafeEmitter, deadLetterHeaders } = require('courier-bus/adapter-kit');
const { describeTransport } = require('courier-bus/conformance');

assert.throws(() => require.resolve('mocha'), /Cannot find module/, 'no mocha in this project');

/** A "broker adapter" of a third party: here it forwards to the memory transport, with its own name and events. */
class ThirdPartyTransport extends TransportWrapper {
  constructor(inner) {
    super(inner);
    this.events = new SafeEmitter();
    inner.on('connected', (info) => this.events.emit('connected', info));
  }
  get name() {
    return 'third-party';
  }
  on(event, listener) {
    this.events.on(event, listener);
    return this;
  }
  off(event, listener) {
    this.events.off(event, listener);
    return this;
  }
}

const headers = deadLetterHeaders({}, { reason: 'rejected', group: 'g', name: 'C.m', attempt: 1 });
assert.equal(headers.courierdeadqueue, 'g/C.m');

const broker = new MemoryBroker();
describeTransport('third-party', {
  create: () => new ThirdPartyTransport(memoryTransport({ broker })),
  timeoutMs: 2000,
  runner: {
    describe: (name, body) => test.describe(name, body),
    it: (name, body, timeoutMs) => test.it(name, { timeout: timeoutMs }, body),
    afterEach: (body, timeoutMs) => test.afterEach(body, { timeout: timeoutMs }),
  },
});

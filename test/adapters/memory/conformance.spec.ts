import { describeTransport } from '../../conformance/describe-transport';
import { MemoryBroker, memoryTransport } from '../../../adapters/memory';

const broker = new MemoryBroker();
describeTransport('memory', { create: () => memoryTransport({ broker }), timeoutMs: 2000 });

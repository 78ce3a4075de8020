export { MemoryBroker, MemoryTransport, memoryTransport } from './memory-transport';
export type { MemoryBrokerOptions, MemoryTransportOptions } from './memory-transport';

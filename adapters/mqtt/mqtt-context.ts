/**
 * What the MQTT adapter's parts share, handed to each at construction instead of calling back
 * into the transport: the resolved options, the client id rules and the transport's events.
 */
import type { SafeEmitter } from '../../lib/adapter-kit';
import type { TransportEvents } from '../../lib/transport';
import type { ClientIdPolicy } from './client-id-policy';
import type { ResolvedMqttOptions } from './mqtt-options';

/** The parts' shared, read-only view of their transport. */
export interface MqttContext {
  readonly options: ResolvedMqttOptions;
  readonly clientIds: ClientIdPolicy;
  /** The transport's events: emit() never throws (the kit's SafeEmitter). */
  readonly events: SafeEmitter<TransportEvents>;
}

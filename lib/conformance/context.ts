/** What each group of conformance cases is given: fresh transports and specs, cleaned up after each case. */
import type { SubscriptionSpec, Transport, TransportCapabilities } from '../transport';

export interface SuiteContext {
  /** How long to wait for a delivery (ms). */
  readonly wait: number;
  /** What the transport claims; a group registers only the cases of what it claims. */
  readonly caps: TransportCapabilities;
  /** A new transport (closed after the case). */
  transport(): Promise<Transport>;
  /** A subscription spec named `handler`, prefetch 10 unless given (purged after the case). */
  spec(partial: Partial<SubscriptionSpec> & { pattern: string }): SubscriptionSpec;
  /** Registers one case, with the suite's timeout unless given. */
  it(name: string, body: () => Promise<void>, timeoutMs?: number): void;
}

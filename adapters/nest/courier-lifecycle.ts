import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Bus } from '../../lib/bus';
import { isCourierClass } from '../../lib/decorators';
import { StartupError } from '../../lib/errors';

/**
 * Runs the bus with the Nest application (docs/nestjs.md):
 * - `onModuleInit`: every instantiated provider and controller whose class is a Courier class
 *   (`isCourierClass`) is registered, once per instance; from here on its `@Publish` methods
 *   publish (before the bus runs they reject with BusNotStartedError, never run unwrapped).
 * - `onApplicationBootstrap`: the bus starts (checks, subscribes, connects); a problem rejects
 *   the application's start with one `StartupError` listing every problem.
 * - `onModuleDestroy` (`app.close()`, or a signal with `enableShutdownHooks()`): the bus stops,
 *   waiting for the handlers in flight (`shutdownTimeoutMs`) and acking what they finish.
 * Part of CourierModule; exported for its documentation, not to be provided by an app.
 */
@Injectable()
export class CourierLifecycle implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly problems: string[] = [];

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(Bus) private readonly bus: Bus,
  ) {}

  onModuleInit(): void {
    const seen = new Set<object>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const cls: unknown = wrapper.metatype ?? (wrapper.instance as object | undefined)?.constructor;
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        // A new instance per request or per injection: no one instance for the bus to call.
        if (isCourierClass(cls)) this.problems.push(`${wrapper.name as string}: a Courier class must be a singleton provider (the default scope), not request-scoped or transient`);
        continue;
      }
      const instance = wrapper.instance as object | null | undefined;
      if (instance === null || typeof instance !== 'object' || seen.has(instance) || !isCourierClass(instance.constructor)) continue;
      seen.add(instance);
    }
    this.bus.register(...seen);
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.bus.start();
    } catch (err) {
      if (!this.problems.length) throw err;
      throw new StartupError([...this.problems, ...(err instanceof StartupError ? err.problems : [String(err)])]);
    }
    if (this.problems.length) {
      await this.bus.stop();
      throw new StartupError(this.problems);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.bus.stop();
  }
}

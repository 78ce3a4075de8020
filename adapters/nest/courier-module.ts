import { DynamicModule, FactoryProvider, Module, ModuleMetadata, Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Bus, BusOptions, createBus } from '../../lib/bus';
import { CourierLifecycle } from './courier-lifecycle';

/** The token of the module's options (what `createBus` takes). */
const COURIER_OPTIONS = Symbol('courier-bus/nest options');

export interface CourierModuleAsyncOptions {
  /** Modules whose providers `inject` names (a configuration module). */
  readonly imports?: ModuleMetadata['imports'];
  /** Tokens whose values `useFactory` gets, in order. */
  readonly inject?: FactoryProvider['inject'];
  /** Returns the options of `createBus`: the transport, the service's `source`, … */
  readonly useFactory: (...args: any[]) => BusOptions | Promise<BusOptions>;
}

/**
 * One bus for the application, in a global module: inject it by its class `Bus` or with
 * `@InjectBus()`. Every provider and controller whose class has `@Subscriber` / `@Publisher`
 * (or `@Subscribe` / `@Publish` methods) is found by Nest's discovery and registered; the bus
 * starts while the application bootstraps and stops when it closes ({@link CourierLifecycle}).
 */
@Module({})
export class CourierModule {
  /** With the options of `createBus`, known when the module is declared. */
  static forRoot(options: BusOptions): DynamicModule {
    return CourierModule.build([], { provide: COURIER_OPTIONS, useValue: options });
  }

  /** With options a factory returns from injected providers (a configuration service). */
  static forRootAsync(options: CourierModuleAsyncOptions): DynamicModule {
    return CourierModule.build(options.imports ?? [], { provide: COURIER_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] });
  }

  private static build(imports: NonNullable<ModuleMetadata['imports']>, optionsProvider: Provider): DynamicModule {
    return {
      module: CourierModule,
      // Global modules run their lifecycle hooks before the others (Nest gives them the largest
      // distance): the bus is registered and started before any user provider's hook runs.
      global: true,
      imports: [DiscoveryModule, ...imports],
      providers: [optionsProvider, { provide: Bus, useFactory: (o: BusOptions) => createBus(o), inject: [COURIER_OPTIONS] }, CourierLifecycle],
      exports: [Bus],
    };
  }
}

import { Injectable, Module } from '@nestjs/common';
import { CourierModule } from 'courier-bus/nest';
import { Ledger, OrderService, ProductService, RefundController, SlowWorker } from './services.js';
import { makeTransport } from './transports.js';

/** Stands for an app's configuration service: what forRootAsync's factory is given. */
@Injectable()
export class Settings {
  readonly source = 'nest-test';
  readonly shutdownTimeoutMs = Number(process.env['COURIER_NEST_SHUTDOWN_MS'] ?? '10000');
}

@Module({ providers: [Settings], exports: [Settings] })
export class SettingsModule {}

@Module({ providers: [Ledger], exports: [Ledger] })
export class LedgerModule {}

@Module({ imports: [LedgerModule], providers: [OrderService] })
export class OrdersModule {}

@Module({ imports: [LedgerModule], providers: [ProductService, SlowWorker], controllers: [RefundController] })
export class ProductsModule {}

@Module({
  imports: [
    // Listed first on purpose: the bus still starts before OrderService's onApplicationBootstrap.
    OrdersModule,
    ProductsModule,
    CourierModule.forRootAsync({
      imports: [SettingsModule],
      inject: [Settings],
      useFactory: (s: Settings) => ({ transport: makeTransport(), source: s.source, shutdownTimeoutMs: s.shutdownTimeoutMs }),
    }),
  ],
})
export class AppModule {}

import { Module } from '@nestjs/common';
import type { Transport } from 'courier-bus';
import { CourierModule } from 'courier-bus/nest';
import { OrdersService } from './orders.service';
import { ProductsService } from './products.service';

@Module({ providers: [OrdersService], exports: [OrdersService] })
export class OrdersModule {}

@Module({ providers: [ProductsService] })
export class ProductsModule {}

/** `COURIER_TRANSPORT`: memory (default), amqp (`COURIER_AMQP_URL`) or mqtt (`COURIER_MQTT_URL`). */
async function transportFromEnv(): Promise<Transport> {
  const name = process.env['COURIER_TRANSPORT'] ?? 'memory';
  if (name === 'amqp') return (await import('courier-bus/amqp')).amqpTransport({ url: process.env['COURIER_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672' });
  if (name === 'mqtt') return (await import('courier-bus/mqtt')).mqttTransport({ url: process.env['COURIER_MQTT_URL'] ?? 'mqtt://127.0.0.1:1883', clientId: 'nest-sample', sessionExpirySeconds: 300 });
  if (name === 'memory') return (await import('courier-bus/memory')).memoryTransport();
  throw new Error(`COURIER_TRANSPORT: unknown transport "${name}" (memory, amqp, mqtt)`);
}

@Module({
  imports: [
    OrdersModule,
    ProductsModule,
    CourierModule.forRootAsync({ useFactory: async () => ({ transport: await transportFromEnv(), source: 'nest-sample' }) }),
  ],
})
export class AppModule {}

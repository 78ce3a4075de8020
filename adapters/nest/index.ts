/**
 * The NestJS integration, imported as `courier-bus/nest` (docs/nestjs.md): `CourierModule`, which
 * finds `@Subscriber` / `@Publisher` providers and controllers by Nest's discovery, registers them
 * on one bus and runs it with the application's lifecycle. `@nestjs/common` and `@nestjs/core`
 * (11 or 12) are optional peer dependencies the app installs.
 */
import { assertPeerInstalled } from '../../lib/peer-dependency';
import { assertNestLoadable } from './nest-loadable';

assertPeerInstalled('@nestjs/common', 'courier-bus/nest');
assertPeerInstalled('@nestjs/core', 'courier-bus/nest');
assertNestLoadable();

export { CourierModule } from './courier-module';
export type { CourierModuleAsyncOptions } from './courier-module';
export { CourierLifecycle } from './courier-lifecycle';
export { InjectBus } from './inject-bus';

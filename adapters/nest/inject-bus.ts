import { Inject } from '@nestjs/common';
import { Bus } from '../../lib/bus';

/**
 * Injects the module's {@link Bus}. The token is the `Bus` class itself, so a constructor
 * parameter typed `Bus` is injected without this decorator when the app's compiler emits
 * decorator metadata (tsc with `emitDecoratorMetadata`; not tsx / esbuild, which need this).
 */
export function InjectBus(): PropertyDecorator & ParameterDecorator {
  return Inject(Bus);
}

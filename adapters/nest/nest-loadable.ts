import { CourierError } from '../../lib/errors';

/**
 * Courier's build is CommonJS and NestJS 12 is ES modules only: this entry point loads it with
 * require(), which Node supports from 20.19 on (require(esm), on by default; one module instance
 * shared with the app's own `import`). On an older Node that fails with ERR_REQUIRE_ESM; this turns
 * it into an error that says what to do. NestJS 11 is CommonJS and loads on any Node 20.
 * @internal
 */
export function assertNestLoadable(): void {
  try {
    require('@nestjs/common');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw err;
    throw new CourierError(
      `courier-bus/nest cannot load NestJS, an ES module, on Node ${process.versions.node}: NestJS 12 needs Node 20.19 or later here (require of ES modules), or NestJS 11`,
      { cause: err },
    );
  }
}

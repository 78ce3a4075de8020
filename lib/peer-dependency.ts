import { MissingPeerDependencyError } from './errors';

/**
 * Throws {@link MissingPeerDependencyError} unless `packageName` resolves from Courier's own
 * location (where Node will look for it). Each broker adapter calls this first thing when it is
 * imported, so a missing client fails at the import with one message that names it, not later
 * inside `connect()` with a bare MODULE_NOT_FOUND.
 * @internal
 */
export function assertPeerInstalled(packageName: string, importPath: string): void {
  try {
    require.resolve(packageName);
  } catch (err) {
    throw new MissingPeerDependencyError(packageName, importPath, { cause: err });
  }
}

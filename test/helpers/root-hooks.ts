/**
 * Root-level mocha hooks (loaded through .mocharc.json "require"): stop every broker container the
 * run started, whether its tests passed or failed. brokers.ts also removes leftovers on process
 * exit and on SIGINT/SIGTERM, since mocha's `exit: true` ends the process right after the run.
 */
import { stopAllContainers } from './brokers';

export const mochaHooks = {
  async afterAll(this: { timeout(ms: number): void }): Promise<void> {
    this.timeout(60_000);
    await stopAllContainers();
  },
};

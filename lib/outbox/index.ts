/** The transactional outbox and inbox, store-agnostic; stores are in adapters/postgres and adapters/sqlite. */
export { Outbox, createOutbox } from './outbox';
export type { OutboxOptions, OutboxPublishOptions } from './outbox';
export { OutboxRelay, runRelay } from './relay';
export type { RelayOptions, RelayTarget } from './relay';
export { outboxScope } from './scope';
export type { OutboxRoute } from './scope';
export type { OutboxStore, InboxStore, OutboxEntry, ClaimedRow, FailedRow, BatchOutcome, OutboxStats } from './store';

/** Courier's outbox and inbox tables on PostgreSQL (node-postgres, `pg`). */
export { PgOutboxStore } from './pg-outbox-store';
export type { PgOutboxStoreOptions, PgQueryable } from './pg-outbox-store';
export { PgInboxStore } from './pg-inbox-store';
export type { PgInboxStoreOptions } from './pg-inbox-store';
export { outboxDdl, inboxDdl } from './pg-schema';

/** Courier's outbox and inbox tables on PostgreSQL, imported as `courier-bus/postgres`; the app passes its own node-postgres (`pg`) pool or client (an optional peer dependency). */
export { PgOutboxStore } from './pg-outbox-store';
export type { PgOutboxStoreOptions, PgQueryable } from './pg-outbox-store';
export { PgInboxStore } from './pg-inbox-store';
export type { PgInboxStoreOptions } from './pg-inbox-store';
export { outboxDdl, inboxDdl } from './pg-schema';

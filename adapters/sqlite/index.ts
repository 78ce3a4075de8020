/** Courier's outbox and inbox tables on SQLite (better-sqlite3, version 12). */
export { SqliteOutboxStore } from './sqlite-outbox-store';
export type { SqliteOutboxStoreOptions } from './sqlite-outbox-store';
export { SqliteInboxStore } from './sqlite-inbox-store';
export type { SqliteInboxStoreOptions } from './sqlite-inbox-store';
export { outboxDdl, inboxDdl } from './sqlite-schema';

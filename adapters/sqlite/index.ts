/** Courier's outbox and inbox tables on SQLite, imported as `courier-bus/sqlite`; the app passes its own better-sqlite3 (version 12) database (an optional peer dependency). */
export { SqliteOutboxStore } from './sqlite-outbox-store';
export type { SqliteOutboxStoreOptions } from './sqlite-outbox-store';
export { SqliteInboxStore } from './sqlite-inbox-store';
export type { SqliteInboxStoreOptions } from './sqlite-inbox-store';
export { outboxDdl, inboxDdl } from './sqlite-schema';

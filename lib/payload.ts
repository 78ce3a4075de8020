/** The types of payloads: a leaf module (decorators.ts re-exports them). */

/** A class decorated with @Message. */
export type PayloadClass<T = unknown> = new (...args: never[]) => T;

/** The plain data a payload class describes (what a publisher returns): its non-function fields. */
export type PayloadShape<T> = { [K in keyof T as T[K] extends (...args: never[]) => unknown ? never : K]: T[K] };

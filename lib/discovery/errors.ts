/** Errors of balanced requests (docs/discovery.md). */
import { CourierError } from '../errors';

/** No live instance handles the request's type (or every one was tried). Nothing was sent. */
export class NoInstanceError extends CourierError {
  override readonly code = 'NO_INSTANCE';
  constructor(readonly messageType: string) {
    super(`No live instance handles ${messageType}`);
  }
}

/**
 * The instance a balanced request was sent to left (stopped, or its heartbeats stopped for its
 * TTL) before it replied. The request may or may not have been handled.
 */
export class InstanceGoneError extends CourierError {
  override readonly code = 'INSTANCE_GONE';
  constructor(readonly messageType: string, readonly instance: string, readonly reason: LeaveReason) {
    super(`${instance} left (${reason}) before it replied to ${messageType}`);
  }
}

/** Why an instance left the registry: it said goodbye, or its heartbeats stopped for its TTL. */
export type LeaveReason = 'stopped' | 'expired';

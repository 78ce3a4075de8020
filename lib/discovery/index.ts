/** The registry and balanced requests (docs/discovery.md). */
export { Discovery } from './discovery';
export type { DiscoveryOptions, ServiceInstance, OnInstanceGone, BalancedRequestOptions, DiscoveryHost } from './discovery';
export { Balancer, BALANCE_STRATEGIES } from './balancer';
export type { BalanceStrategy, Candidate } from './balancer';
export { NoInstanceError, InstanceGoneError } from './errors';
export type { LeaveReason } from './errors';
export { PresenceTypes, PRESENCE_PATTERN, directTopic, parseAnnouncement } from './presence';
export type { PresenceAnnouncement } from './presence';

export { createApp } from './app';
export { Authenticator } from './auth';
export type { Principal, AuthenticatorOptions } from './auth';
export { EventHub, EVENTS_PATH } from './events';
export { listen } from './server';
export type { ApiServer, ListenOptions } from './server';
export type { ApiDeps, ApiCatalog } from './deps';
export { OPERATIONS, openApiDocument } from './openapi';
export type * from './contract';

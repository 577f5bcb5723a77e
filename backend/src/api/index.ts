/** The service's face: HTTP routes (Express) and the WebSocket hub, who is calling (engine SSO)
 *  and what they may see, errors as HTTP statuses, OpenAPI, and the contract the UI reads. */
export { createApp } from './app';
export { Authenticator } from './auth';
export { Permits } from './permits';
export type { PermitsOptions, Needed } from './permits';
export { ScrapeAccess } from './scrape';
export { DeletedVms } from './deletedVms';
export { NextMethods } from './nextMethod';
export type { MethodSettings } from './nextMethod';
export type { Principal, AuthenticatorOptions } from './auth';
export { EventHub, EVENTS_PATH } from './events';
export { listen } from './server';
export type { ApiServer, ListenOptions } from './server';
export type { ApiDeps, ApiCatalog } from './deps';
export { OPERATIONS, openApiDocument } from './openapi';
export type * from './contract';

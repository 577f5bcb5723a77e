export { QmpClient, qmpErrorClass, waitForEvent } from './client';
export type { QmpConnectOptions, QmpGreeting } from './client';
export type { QmpSession, QmpCallOptions } from './session';
export type { QmpEvent, QmpEventListener } from './events';
export { BlockJob } from './blockJob';
export type { JobOutcome } from './blockJob';
export { BlockApi, deviceIdFromQdev } from './blockApi';
export type { BlockAction, BlockDevice, DirtyBitmap, BitmapSource } from './blockApi';

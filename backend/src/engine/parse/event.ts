import type { EngineEvent } from '../types';
import { Fields, listOf, type Json } from './fields';

/** `event` (reference §9). */
export function parseEvent(o: Json): EngineEvent {
  const f = new Fields('event', o);
  return {
    id: f.reqStr('id'),
    index: f.int64('index'),
    code: f.int('code'),
    severity: f.str('severity'),
    time: f.date('time'),
    description: f.str('description') ?? '',
    origin: f.str('origin'),
    customId: f.int('custom_id'),
    correlationId: f.str('correlation_id'),
    vmId: f.refId('vm'),
    hostId: f.refId('host'),
    clusterId: f.refId('cluster'),
    storageDomainId: f.refId('storage_domain'),
  };
}

export function parseEvents(body: unknown): EngineEvent[] {
  return listOf(body, 'event', 'event list').map(parseEvent);
}

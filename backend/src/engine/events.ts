import { randomInt } from 'crypto';
import { AppError, isAppError } from '../errors';
import type { EngineCallOptions, EngineConnection } from './connection';
import { entityOf } from './parse/fields';
import { parseEvent, parseEvents } from './parse/event';
import type { EngineEvent, EventSeverity } from './types';

/** Our events' `origin` in the engine's event log (reference §9). */
export const EVENT_ORIGIN = 'olvm-backup';

export interface NewEvent {
  description: string;
  severity: EventSeverity;
  vmId?: string;
  hostId?: string;
  clusterId?: string;
  storageDomainId?: string;
  /** Unique per origin, int32. Default: a random positive int32, replaced by another when the
   *  engine reports it taken. */
  customId?: number;
  /** Seconds during which the engine drops repeats of this event; engine default 30. */
  floodRate?: number;
}

const MAX_ATTEMPTS = 3;

/** `POST /events` with our own origin and a unique custom_id. */
export async function addEvent(
  conn: EngineConnection,
  ev: NewEvent,
  opts: EngineCallOptions & { origin?: string } = {},
): Promise<EngineEvent> {
  const origin = opts.origin ?? EVENT_ORIGIN;
  if (origin.toLowerCase() === 'ovirt') throw new AppError('INVALID_ARGUMENT', `event origin '${origin}' is reserved for the engine`);
  if (ev.customId !== undefined && !(Number.isInteger(ev.customId) && ev.customId >= 0 && ev.customId <= 2 ** 31 - 1)) {
    throw new AppError('INVALID_ARGUMENT', `event custom id ${ev.customId} is not a non-negative int32`);
  }
  for (let attempt = 1; ; attempt++) {
    const customId = ev.customId ?? randomInt(1, 2 ** 31 - 1);
    try {
      const reply = await conn.request({ ...opts, method: 'POST', path: '/events', body: eventBody(ev, origin, customId) });
      return parseEvent(entityOf(reply, 'new event'));
    } catch (err) {
      if (ev.customId !== undefined || attempt >= MAX_ATTEMPTS || !isDuplicateCustomId(err)) throw err;
    }
  }
}

/** `GET /events`: newest first; `from` returns only events with a higher index. */
export async function listEvents(
  conn: EngineConnection,
  opts: EngineCallOptions & { search?: string; from?: number; max?: number } = {},
): Promise<EngineEvent[]> {
  const query = { search: opts.search, case_sensitive: opts.search !== undefined ? false : undefined, from: opts.from, max: opts.max };
  return parseEvents(await conn.request({ ...opts, method: 'GET', path: '/events', query }));
}

function eventBody(ev: NewEvent, origin: string, customId: number): Record<string, unknown> {
  const body: Record<string, unknown> = { description: ev.description, severity: ev.severity, origin, custom_id: customId };
  if (ev.vmId !== undefined) body.vm = { id: ev.vmId };
  if (ev.hostId !== undefined) body.host = { id: ev.hostId };
  if (ev.clusterId !== undefined) body.cluster = { id: ev.clusterId };
  if (ev.storageDomainId !== undefined) body.storage_domain = { id: ev.storageDomainId };
  if (ev.floodRate !== undefined) body.flood_rate = ev.floodRate;
  return body;
}

/** ACTION_TYPE_FAILED_EXTERNAL_EVENT_DUPLICATE_CUSTOM_ID, in whatever words the engine used. */
function isDuplicateCustomId(err: unknown): boolean {
  if (!isAppError(err, 'ENGINE_HTTP_ERROR')) return false;
  const d = err.details ?? {};
  const text = [d.reason, d.detail].filter((v): v is string => typeof v === 'string').join(' ');
  return (d.status === 400 || d.status === 409) && /custom[ _-]?id|duplicate/i.test(text);
}

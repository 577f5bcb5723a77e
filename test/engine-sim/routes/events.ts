import express, { type Router } from 'express';
import { isFiltered, sendCreated, sendList, userOf, wrap, type SimContext } from '../context';
import { EngineFault, incomplete, invalidEnum, notFound, operationFailed } from '../faults';
import type { Severity } from '../state';
import { eventView } from '../views';
import { body, int, param, refId, send, str } from '../wire';

const SEVERITIES: Severity[] = ['normal', 'warning', 'error', 'alert'];
/** AuditLogType EXTERNAL_EVENT_NORMAL / _WARNING / _ERROR and EXTERNAL_ALERT */
const CODES: Record<Severity, number> = { normal: 12001, warning: 12002, error: 12003, alert: 12004 };
const MAX_MESSAGE = 800;

/**
 * Events (reference §9): AddExternalEvent's rules (mandatory fields, origin not "oVirt",
 * (origin, custom_id) unique, message truncated), and the list newest first with `from`.
 */
export function eventsRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  r.get(
    '/events',
    wrap((req, res) => {
      const from = int({ from: param(req, 'from') }, 'from');
      const user = userOf(res);
      const filtered = isFiltered(req, res) && !user.admin;
      const visibleVm = (id: string | undefined): boolean => id !== undefined && (st.vm(id)?.permittedUserIds.includes(user.id) ?? false);
      const items = st.data.events
        .filter((e) => from === undefined || e.index > from)
        .filter((e) => !filtered || visibleVm(e.vmId))
        .sort((a, b) => b.index - a.index);
      sendList(
        req,
        res,
        'events',
        'event',
        items,
        {
          name: (e) => e.description,
          description: (e) => e.description,
          severity: (e) => e.severity,
          origin: (e) => e.origin,
          custom_id: (e) => (e.customId === undefined ? undefined : String(e.customId)),
          type: (e) => String(e.code),
          correlation_id: (e) => e.correlationId,
          'vm.name': (e) => (e.vmId ? st.vm(e.vmId)?.name : undefined),
          vm: (e) => (e.vmId ? st.vm(e.vmId)?.name : undefined),
        },
        eventView,
      );
    }),
  );

  r.get(
    '/events/:id',
    wrap((req, res) => {
      const e = st.data.events.find((x) => String(x.index) === req.params['id']);
      if (!e) throw notFound();
      send(req, res, 200, 'event', eventView(e));
    }),
  );

  r.post(
    '/events',
    wrap((req, res) => {
      const b = body(req);
      const missing = [str(b, 'description') ? '' : 'description', str(b, 'severity') ? '' : 'severity', str(b, 'origin') ? '' : 'origin', str(b, 'custom_id') ? '' : 'customId'].filter(Boolean);
      if (missing.length) throw incomplete('Event', missing);
      const severity = str(b, 'severity') as Severity;
      if (!SEVERITIES.includes(severity)) throw invalidEnum(severity, 'LogSeverity', SEVERITIES);
      const customId = int(b, 'custom_id') ?? 0;
      if (customId > 2147483647 || customId < -2147483648) throw new EngineFault(400, 'Operation Failed', `Value "${customId}" of "custom_id" is out of the range of an int`);
      const origin = str(b, 'origin') ?? '';
      if (origin.toLowerCase() === 'ovirt') throw operationFailed(400, 'Cannot add External Event. Illegal origin: oVirt.');
      if (st.data.events.some((e) => e.origin === origin && e.customId === customId)) {
        throw operationFailed(400, 'Cannot add External Event. An event with the same custom id and origin already exists.');
      }
      const vmId = refId(b, 'vm');
      if (vmId && !st.vm(vmId)) throw operationFailed(400, 'Cannot add External Event. VM not found.');
      const correlation = req.get('correlation-id') ?? param(req, 'correlation_id');
      const event = st.addEvent({
        code: CODES[severity],
        severity,
        description: (str(b, 'description') ?? '').slice(0, MAX_MESSAGE),
        origin,
        customId,
        correlationId: correlation,
        floodRate: int(b, 'flood_rate') ?? 30,
        vmId,
        hostId: refId(b, 'host'),
        clusterId: refId(b, 'cluster'),
        dataCenterId: refId(b, 'data_center'),
        storageDomainId: refId(b, 'storage_domain'),
        templateId: refId(b, 'template'),
        userId: refId(b, 'user'),
      });
      sendCreated(ctx, req, res, 'event', eventView(event));
    }),
  );

  return r;
}

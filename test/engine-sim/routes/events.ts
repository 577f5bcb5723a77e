import express, { type Router } from 'express';
import { principalIds, seesCluster, seesDataCenter, seesHost, seesStorageDomain, seesTemplate, seesVm, SYSTEM, type ObjectRef } from '../access';
import { isFiltered, requirePermit, sendCreated, sendList, userOf, wrap, type SimContext } from '../context';
import { EngineFault, incomplete, invalidEnum, notFound, operationFailed } from '../faults';
import { EVERYONE_ID, type Severity, type SimEvent, type SimUserRecord } from '../state';
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
      const filtered = isFiltered(req, res);
      const shown = filtered ? eventFilter(ctx, userOf(res)) : () => true;
      const items = st.data.events
        .filter((e) => from === undefined || e.index > from)
        .filter(shown)
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
      // AddExternalEvent (ExternalEventCommandBase.getPermissionList): inject_external_events on
      // each object the event names, on System for a global event
      const keys = [['storagedomain', 'storage_domain'], ['datacenter', 'data_center'], ['user', 'user'], ['cluster', 'cluster'], ['vm', 'vm'], ['template', 'template'], ['host', 'host']] as const;
      const named = keys.flatMap(([kind, key]): ObjectRef[] => {
        const id = refId(b, key);
        return id === undefined ? [] : [{ kind, id }];
      });
      for (const object of named.length ? named : [SYSTEM]) requirePermit(ctx, res, 'inject_external_events', object);
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

/**
 * What a filtered GET /events shows (audit_log_sp.sql GetAllFromAuditLog): an event whose VM,
 * template, host, data center, storage domain or cluster the caller sees, and on which some
 * logged-in user (or a group of his) holds a direct permission (user_object_permissions_view,
 * which ignores Everyone's grants and is not limited to the caller).
 */
function eventFilter(ctx: SimContext, user: SimUserRecord): (e: SimEvent) => boolean {
  const st = ctx.state;
  const sessions = new Set([user.id, ...ctx.tokens.liveUserIds()]);
  const granted = new Set<string>();
  for (const id of sessions) {
    const u = st.user(id);
    if (u) for (const p of principalIds(st, u)) if (p !== EVERYONE_ID) granted.add(p);
  }
  const direct = new Set(st.data.permissions.filter((p) => granted.has(p.principalId)).map((p) => p.objectId));
  const ok = (id: string | undefined, sees: (id: string) => boolean): boolean => id !== undefined && direct.has(id) && sees(id);
  return (e) =>
    ok(e.vmId, (id) => {
      const vm = st.vm(id);
      return vm !== undefined && seesVm(st, user, vm);
    }) ||
    ok(e.templateId, (id) => seesTemplate(st, user, id)) ||
    ok(e.hostId, (id) => {
      const h = st.host(id);
      return h !== undefined && seesHost(st, user, h);
    }) ||
    ok(e.dataCenterId, (id) => seesDataCenter(st, user, id)) ||
    ok(e.storageDomainId, (id) => seesStorageDomain(st, user, id)) ||
    ok(e.clusterId, (id) => seesCluster(st, user, id));
}

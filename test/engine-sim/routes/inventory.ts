import express, { type Request, type Response, type Router } from 'express';
import { adminOnly, isFiltered, sendList, userOf, wrap, type SimContext } from '../context';
import { notFound } from '../faults';
import { assignedRoleView, systemRolesOf } from '../roles';
import type { Fields } from '../search';
import { clusterView, dataCenterView, hostView, networkView, storageDomainView, userView, vnicProfileView } from '../views';
import { collection, send, type Wire } from '../wire';

/**
 * Read-only inventory (reference §3.3, §3.5): one data center, one cluster, its hosts (all this
 * machine, 127.0.0.1), one storage domain per local directory, the management network and its vNIC
 * profile, the users and their system roles. A filtered non-admin sees no hosts or storage
 * domains and only himself.
 */
export function inventoryRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;

  function resource<T extends { id: string }>(kind: string, singular: string, items: (req: Request, res: Response) => T[], fields: Fields<T>, view: (t: T) => Wire): void {
    r.get(
      `/${kind}`,
      wrap((req, res) => sendList(req, res, kind, singular, items(req, res), fields, view)),
    );
    r.get(
      `/${kind}/:id`,
      wrap((req, res) => {
        const it = items(req, res).find((x) => x.id === req.params['id']);
        if (!it) throw notFound();
        send(req, res, 200, singular, view(it));
      }),
    );
  }

  resource(
    'hosts',
    'host',
    (req, res) => (adminOnly(req, res) ? st.data.hosts : []),
    {
      name: (h) => h.name,
      id: (h) => h.id,
      status: () => 'up',
      address: () => '127.0.0.1',
      hw_id: (h) => h.hwId,
      cluster: () => 'Default',
      datacenter: () => 'Default',
      tag: () => [],
    },
    (h) => hostView(st, h),
  );

  resource('clusters', 'cluster', () => [{ id: st.data.clusterId }], { name: () => 'Default', id: (c) => c.id, datacenter: () => 'Default' }, () => clusterView(st));

  resource(
    'datacenters',
    'data_center',
    () => [{ id: st.data.dataCenterId }],
    { name: () => 'Default', id: (d) => d.id, status: () => 'up', 'storage.name': () => st.data.storageDomains.map((s) => s.name), storage: () => st.data.storageDomains.map((s) => s.name) },
    () => dataCenterView(st),
  );

  r.get(
    '/datacenters/:id/storagedomains',
    wrap((req, res) => {
      const list = req.params['id'] === st.data.dataCenterId && adminOnly(req, res) ? st.data.storageDomains.map((s) => storageDomainView(st, s, true)) : [];
      send(req, res, 200, 'storage_domains', list.length ? { storage_domain: list } : {});
    }),
  );

  resource(
    'storagedomains',
    'storage_domain',
    (req, res) => (adminOnly(req, res) ? st.data.storageDomains : []),
    { name: (s) => s.name, id: (s) => s.id, type: () => 'data', datacenter: () => 'Default', status: () => 'active' },
    (s) => storageDomainView(st, s),
  );

  resource(
    'users',
    'user',
    (req, res) => (isFiltered(req, res) && !userOf(res).admin ? [userOf(res)] : st.data.users),
    { name: (u) => u.name, usrname: (u) => `${u.name}@internal-authz`, id: (u) => u.id },
    (u) => userView(u),
  );

  /**
   * A user's system roles (ovirt-ui-plugin.md §5.9 item 3). As the engine's query
   * (GetPermissionsByAdElementId) does: the filter only asks that the caller holds some
   * permission, so a filtered user may read another user's system roles too; an unknown user
   * has none (`{}`, not 404: the sub-collection does not look the user up).
   */
  r.get(
    '/users/:id/roles',
    wrap((req, res) => {
      isFiltered(req, res); // a non-admin asking for filter=false is refused, as everywhere
      const u = st.user(String(req.params['id']));
      send(req, res, 200, 'roles', collection('role', u ? systemRolesOf(u).map((role) => assignedRoleView(u.id, role)) : []));
    }),
  );

  resource('networks', 'network', () => [{ id: st.data.networkId }], { name: () => 'ovirtmgmt', id: (n) => n.id, datacenter: () => 'Default' }, () => networkView(st));
  resource('vnicprofiles', 'vnic_profile', () => [{ id: st.data.vnicProfileId }], { name: () => 'ovirtmgmt', id: (n) => n.id }, () => vnicProfileView(st));

  return r;
}

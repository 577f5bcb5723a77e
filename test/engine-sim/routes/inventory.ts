import express, { type Request, type Response, type Router } from 'express';
import { seesCluster, seesDataCenter, seesHost, seesStorageDomain, seesTemplate } from '../access';
import { adminOf, isFiltered, sendList, userOf, wrap, type SimContext } from '../context';
import { notFound } from '../faults';
import type { Fields } from '../search';
import { BLANK_TEMPLATE_ID } from '../state';
import { clusterView, dataCenterView, hostView, networkView, storageDomainView, templateView, vnicProfileView } from '../views';
import { userView } from '../permissionViews';
import { send, type Wire } from '../wire';

/**
 * Read-only inventory (reference §3.3, §3.5): one data center, one cluster, its hosts (all this
 * machine, 127.0.0.1), one storage domain per local directory, the Blank template, the management
 * network and its vNIC profile, the users. Filtered queries show what create_views.sql's
 * user_*_permissions_view allow (access.ts); since every user holds Everyone's UserProfileEditor
 * on System (a USER role), that is every host, cluster, data center and storage domain, until that
 * grant is revoked. A filtered non-admin sees only himself among users (GetAllDbUsersQuery).
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
    (req, res) => (isFiltered(req, res) ? st.data.hosts.filter((h) => seesHost(st, userOf(res), h)) : st.data.hosts),
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

  resource('clusters', 'cluster', (req, res) => [{ id: st.data.clusterId }].filter((c) => !isFiltered(req, res) || seesCluster(st, userOf(res), c.id)), { name: () => 'Default', id: (c) => c.id, datacenter: () => 'Default' }, () => clusterView(st));

  resource(
    'datacenters',
    'data_center',
    (req, res) => [{ id: st.data.dataCenterId }].filter((c) => !isFiltered(req, res) || seesDataCenter(st, userOf(res), c.id)),
    { name: () => 'Default', id: (d) => d.id, status: () => 'up', 'storage.name': () => st.data.storageDomains.map((s) => s.name), storage: () => st.data.storageDomains.map((s) => s.name) },
    () => dataCenterView(st),
  );

  r.get(
    '/datacenters/:id/storagedomains',
    wrap((req, res) => {
      const filtered = isFiltered(req, res);
      const list = req.params['id'] === st.data.dataCenterId ? st.data.storageDomains.filter((s) => !filtered || seesStorageDomain(st, userOf(res), s.id)).map((s) => storageDomainView(st, s, true)) : [];
      send(req, res, 200, 'storage_domains', list.length ? { storage_domain: list } : {});
    }),
  );

  resource(
    'storagedomains',
    'storage_domain',
    (req, res) => (isFiltered(req, res) ? st.data.storageDomains.filter((s) => seesStorageDomain(st, userOf(res), s.id)) : st.data.storageDomains),
    { name: (s) => s.name, id: (s) => s.id, type: () => 'data', datacenter: () => 'Default', status: () => 'active' },
    (s) => storageDomainView(st, s),
  );

  resource(
    'users',
    'user',
    (req, res) => (isFiltered(req, res) && !adminOf(res) ? [userOf(res)] : st.data.users),
    { name: (u) => u.name, usrname: (u) => `${u.name}@internal-authz`, id: (u) => u.id },
    (u) => userView(u),
  );

  resource('templates', 'template', (req, res) => [{ id: BLANK_TEMPLATE_ID }].filter((t) => !isFiltered(req, res) || seesTemplate(st, userOf(res), t.id)), { name: () => 'Blank', id: (t) => t.id }, () => templateView());

  resource('networks', 'network', () => [{ id: st.data.networkId }], { name: () => 'ovirtmgmt', id: (n) => n.id, datacenter: () => 'Default' }, () => networkView(st));
  resource('vnicprofiles', 'vnic_profile', () => [{ id: st.data.vnicProfileId }], { name: () => 'ovirtmgmt', id: (n) => n.id }, () => vnicProfileView(st));

  return r;
}

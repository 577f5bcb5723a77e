import express, { type Router } from 'express';
import { isFiltered, userOf, wrap, type SimContext } from '../context';
import { BLANK_TEMPLATE_ID, ROOT_TAG_ID } from '../state';
import { ENGINE_VERSION } from '../views';
import { API, ref, s, send } from '../wire';

const ROOT_LINKS = [
  'clusters', 'datacenters', 'disks', 'events', 'hosts', 'imagetransfers', 'networks', 'storagedomains', 'tags', 'templates', 'users', 'vms', 'vnicprofiles',
];

/**
 * GET /api (reference §1.1, DESIGN §5): product info, special objects, the authenticated and
 * effective user (how the product learns who a token belongs to), the time, and the summary,
 * which the engine only computes for unfiltered (admin) requests.
 */
export function apiRootRouter(ctx: SimContext): Router {
  const r = express.Router();
  const st = ctx.state;
  r.get(
    '/',
    wrap((req, res) => {
      const user = userOf(res);
      const filtered = isFiltered(req, res);
      const running = st.data.vms.filter((v) => ['up', 'paused', 'powering_down', 'wait_for_launch'].includes(v.status)).length;
      send(req, res, 200, 'api', {
        link: ROOT_LINKS.flatMap((rel) => [{ href: `${API}/${rel}`, rel }, ...(['vms', 'hosts', 'disks', 'events', 'tags', 'storagedomains'].includes(rel) ? [{ href: `${API}/${rel}?search={query}`, rel: `${rel}/search` }] : [])]),
        product_info: {
          instance_id: st.data.instanceId,
          name: 'oVirt Engine',
          vendor: 'ovirt.org',
          version: { build: s(ENGINE_VERSION.build), full_version: ENGINE_VERSION.full, major: s(ENGINE_VERSION.major), minor: s(ENGINE_VERSION.minor), revision: s(ENGINE_VERSION.revision) },
        },
        special_objects: { blank_template: ref('templates', BLANK_TEMPLATE_ID), root_tag: ref('tags', ROOT_TAG_ID) },
        summary: filtered
          ? undefined
          : {
              hosts: { active: s(st.data.hosts.length), total: s(st.data.hosts.length) },
              storage_domains: { active: s(st.data.storageDomains.length), total: s(st.data.storageDomains.length) },
              users: { active: s(st.data.users.length), total: s(st.data.users.length) },
              vms: { active: s(running), total: s(st.data.vms.length) },
            },
        time: Date.now(),
        authenticated_user: ref('users', user.id),
        effective_user: ref('users', user.id),
      });
    }),
  );
  return r;
}

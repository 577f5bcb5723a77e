import express from 'express';
import { promises as fs } from 'fs';
import type { Server } from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { engineRequest } from './engineRequest';

/**
 * A stand-in for WebAdmin (oVirt's admin portal) as a plugin sees it, per
 * shared/reference/ovirt-ui-plugin.md: WebAdmin.html defines `pluginDefinitions` from the
 * ui-plugins descriptors (config merged shallowly with the -config.json override, §1.3–1.4),
 * serves each plugin's resourcePath at /ovirt-engine/webadmin/plugin/<name>/ (§1.5), and its
 * page (webadmin.html) implements `window.pluginApi` (§1.6, §2). Logging in does a real SSO
 * password grant against the engine (simulator); the VM list is the engine's, seen with the
 * user's token, so permissions are the engine's.
 */
export interface HarnessOptions {
  /** The built plugin: the folder holding <name>.json and its resourcePath folder. */
  pluginDist: string;
  /** Engine base URL, http(s)://host:port/ovirt-engine. */
  engineBaseUrl: string;
  engineCaFile?: string;
  /** Merged over the descriptor's config as `serviceUrl` (what /etc/ovirt-engine/ui-plugins/<name>-config.json does). */
  serviceUrl?: string;
  /** Extra config keys merged the same way. */
  configOverride?: Record<string, unknown>;
  host?: string;
  port?: number;
}

interface Descriptor {
  name: string;
  url: string;
  resourcePath?: string;
  config?: Record<string, unknown>;
  lazyLoad?: boolean;
}

/** WebAdmin's VMStatus enum names from the REST API's snake_case (EntityObject.status, §2.9). */
function vmStatusName(s: string): string {
  return s
    .split('_')
    .map((w) => (w ? w.charAt(0).toUpperCase() + w.slice(1) : w))
    .join('');
}

/** Every *.json descriptor in the plugin folder (the engine's ui-plugins directory). */
async function readDescriptors(pluginDist: string): Promise<Descriptor[]> {
  const names = (await fs.readdir(pluginDist)).filter((f) => f.endsWith('.json')).sort();
  const out: Descriptor[] = [];
  for (const n of names) out.push(JSON.parse(await fs.readFile(path.join(pluginDist, n), 'utf8')) as Descriptor);
  return out;
}

/** WebAdmin.html's `pluginDefinitions` (WebAdminHostPageServlet, §1.4). */
async function pluginDefinitions(opts: HarnessOptions, serviceUrl: string | undefined): Promise<Array<{ name: string; url: string; config: Record<string, unknown>; lazyLoad: boolean; enabled: boolean }>> {
  const override: Record<string, unknown> = { ...opts.configOverride };
  if (serviceUrl) override.serviceUrl = serviceUrl;
  return (await readDescriptors(opts.pluginDist)).map((d) => ({
    name: d.name,
    url: d.url,
    // shallow merge, user config over descriptor config (PluginData, §1.3)
    config: { ...(d.config ?? {}), ...override },
    lazyLoad: d.lazyLoad ?? true,
    enabled: true,
  }));
}

export class WebAdminHarness {
  private constructor(
    private readonly live: { serviceUrl: string | undefined },
    private readonly server: Server,
    readonly origin: string,
  ) {}

  /** The WebAdmin page; `?locale=de-DE` sets currentLocale(). */
  get url(): string {
    return `${this.origin}/ovirt-engine/webadmin/WebAdmin.html`;
  }

  setServiceUrl(url: string): void {
    this.live.serviceUrl = url;
  }

  static async start(opts: HarnessOptions): Promise<WebAdminHarness> {
    const app = express();
    // the page is a source file (not compiled): dist/test/ui-harness/ → test/ui-harness/
    const pageFile = path.resolve(__dirname, '../../../test/ui-harness/webadmin.html');
    const live = { serviceUrl: opts.serviceUrl };

    // WebAdmin's default headers (HeaderFilter): plugin pages are framed by the same origin only
    app.use((_req, res, next) => {
      res.setHeader('X-Frame-Options', 'SAMEORIGIN');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      next();
    });
    app.get('/', (_req, res) => res.redirect('/ovirt-engine/webadmin/WebAdmin.html'));
    app.get(['/ovirt-engine/webadmin/', '/ovirt-engine/webadmin/WebAdmin.html'], (_req, res, next) => {
      // descriptors are re-read on every WebAdmin.html request, as the engine does (§1.1)
      void (async () => {
        const defs = await pluginDefinitions(opts, live.serviceUrl);
        const page = (await fs.readFile(pageFile, 'utf8')).replace(
          '<!--PLUGIN_DEFINITIONS-->',
          `<script>var pluginDefinitions = ${JSON.stringify(defs).replace(/</g, '\\u003c')};</script>`,
        );
        res.type('html').setHeader('Cache-Control', 'no-store');
        res.send(page);
      })().catch(next);
    });

    app.post('/ovirt-engine/harness/login', express.json(), (req, res, next) => {
      void (async () => {
        const { username, password } = req.body as { username?: string; password?: string };
        const sso = await engineRequest(`${opts.engineBaseUrl}/sso/oauth/token`, {
          method: 'POST',
          caFile: opts.engineCaFile,
          headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'password', scope: 'ovirt-app-api', username: username ?? '', password: password ?? '' }).toString(),
        });
        const tok = JSON.parse(sso.body || '{}') as { access_token?: string; error?: string; error_description?: string };
        if (sso.status !== 200 || !tok.access_token) {
          res.status(401).json({ error: tok.error_description ?? tok.error ?? `SSO answered ${sso.status}` });
          return;
        }
        const api = await engineRequest(`${opts.engineBaseUrl}/api`, { caFile: opts.engineCaFile, headers: { Accept: 'application/json', Authorization: `Bearer ${tok.access_token}` } });
        const info = JSON.parse(api.body || '{}') as { authenticated_user?: { id?: string } };
        res.json({ userName: username, userId: info.authenticated_user?.id ?? '', ssoToken: tok.access_token });
      })().catch(next);
    });

    app.get('/ovirt-engine/harness/vms', (req, res, next) => {
      void (async () => {
        const a = await engineRequest(`${opts.engineBaseUrl}/api/vms`, { caFile: opts.engineCaFile, headers: { Accept: 'application/json', Authorization: req.headers.authorization ?? '' } });
        if (a.status !== 200) {
          res.status(a.status).json({ error: `engine answered ${a.status}` });
          return;
        }
        const vms = (JSON.parse(a.body || '{}') as { vm?: Array<{ id: string; name: string; status: string }> }).vm ?? [];
        res.json(vms.map((v) => ({ id: v.id, name: v.name, ipaddress: '', status: vmStatusName(v.status), managed: true })));
      })().catch(next);
    });

    app.get('/ovirt-engine/webadmin/plugin/:name/*', (req, res, next) => {
      void (async () => {
        const defs = await readDescriptors(opts.pluginDist);
        const d = defs.find((x) => x.name === req.params.name);
        const rel = (req.params as Record<string, string>)[0] ?? '';
        if (!d?.resourcePath || rel.split('/').includes('..')) {
          res.status(404).end();
          return;
        }
        const file = path.join(opts.pluginDist, d.resourcePath, rel);
        const st = await fs.stat(file).catch(() => null);
        if (!st?.isFile()) {
          res.status(404).end();
          return;
        }
        res.setHeader('Cache-Control', 'no-cache'); // PluginResourceServlet
        res.sendFile(file);
      })().catch(next);
    });

    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    const addr = server.address() as AddressInfo;
    return new WebAdminHarness(live, server, `http://${opts.host ?? '127.0.0.1'}:${addr.port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }
}

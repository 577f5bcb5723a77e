import type { Express, Router } from 'express';
import { createApp, OPERATIONS, openApiDocument, type ApiDeps } from '../../backend/src/api';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  name: string;
  handle: Router & { stack?: Layer[] };
  regexp: RegExp;
}

/** Every (method, path) the Express app answers, read from its router stack. */
function routesOf(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const l of stack) {
      if (l.route) {
        for (const m of Object.keys(l.route.methods)) out.push(`${m} ${prefix}${l.route.path}`.replace(/:(\w+)/g, '{$1}'));
      } else if (l.name === 'router' && l.handle.stack) {
        // express 4 keeps a mount path only as a regexp: /^\/api\/v1\/?(?=\/|$)/i
        const mount = /^\/\^(.*?)\\\/\?\(\?=/.exec(String(l.regexp))?.[1]?.replace(/\\\//g, '/') ?? '';
        walk(l.handle.stack, prefix + mount);
      }
    }
  };
  walk((app as unknown as { _router: { stack: Layer[] } })._router.stack, '');
  return out.sort();
}

describe('the OpenAPI description and the routes', () => {
  // nothing in deps is used until a request arrives
  const app = createApp({ corsOrigins: [], tls: false, startedAt: new Date(), version: 't' } as unknown as ApiDeps);

  test('every route is described and every described operation is routed', () => {
    const described = OPERATIONS.map((o) => `${o.method} ${o.path}`).sort();
    expect(routesOf(app)).toEqual(described);
  });

  test('the document is OpenAPI 3.1 with a schema for every referenced component and the bearer scheme on authenticated operations', () => {
    const doc = openApiDocument('1.2.3') as { openapi: string; info: { version: string }; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('1.2.3');
    const refs = JSON.stringify(doc.paths).match(/#\/components\/schemas\/(\w+)/g) ?? [];
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(doc.components.schemas[r.split('/').pop()!]).toBeDefined();
    for (const op of OPERATIONS) {
      const d = doc.paths[op.path]?.[op.method];
      expect(d).toBeDefined();
      expect(d.security).toEqual(op.auth ? [{ engineSso: [] }] : []);
      for (const p of op.path.match(/\{(\w+)\}/g) ?? []) expect(d.parameters.map((x: { name: string }) => `{${x.name}}`)).toContain(p);
      if (op.auth) expect(Object.keys(d.responses)).toEqual(expect.arrayContaining(['400', '401', '404']));
    }
  });
});

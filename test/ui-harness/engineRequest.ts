import { readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';

export interface EngineAnswer {
  status: number;
  body: string;
}

/**
 * One request to the engine (simulator) from the harness server, trusting its CA when it runs
 * with TLS. The harness plays WebAdmin, whose server side talks to the engine the same way.
 */
export function engineRequest(url: string, o: { method?: string; headers?: Record<string, string>; body?: string; caFile?: string; timeoutMs?: number }): Promise<EngineAnswer> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  const ca = o.caFile ? readFileSync(o.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method: o.method ?? 'GET', headers: o.headers, ca, timeout: o.timeoutMs ?? 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`engine request ${u.pathname} timed out`)));
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

// Unit tests of the event stream against a real local WebSocket server: auth, reconnect, refused token.
import type { AddressInfo } from 'net';
import { WebSocket as NodeWebSocket, WebSocketServer } from 'ws';
import type { ServerMessage } from '../../../backend/src/api/contract';
import { EventStream, type StreamStatus } from './eventStream';

// The live-event client against a real ws server: auth as the first message, reconnect with a
// fresh auth after the server goes away, 4401 reported as unauthorized.
describe('event stream', () => {
  let wss: WebSocketServer;
  let url: string;
  const auths: string[] = [];

  beforeAll(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/v1/events`;
    wss.on('connection', (ws) => {
      ws.once('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { type: string; token: string };
        auths.push(`${m.type}:${m.token}`);
        if (m.token === 'refused') return ws.close(4401, 'unauthorized');
        const send = (x: ServerMessage): void => ws.send(JSON.stringify(x));
        send({ type: 'ready', user: { userId: 'u1', userName: 'admin@internal' }, heartbeatSeconds: 30 });
        send({ type: 'snapshot', jobs: [] });
      });
    });
  });
  afterAll(() => new Promise<void>((r) => wss.close(() => r())));

  function until(pred: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    return new Promise((resolve, reject) => {
      const tick = (): void => {
        if (pred()) resolve();
        else if (Date.now() > end) reject(new Error('timed out'));
        else setTimeout(tick, 20);
      };
      tick();
    });
  }

  it('authenticates first, then reconnects and authenticates again', async () => {
    let n = 0;
    const s = new EventStream({ url, token: () => `t${++n}`, WebSocketImpl: NodeWebSocket as unknown as typeof WebSocket });
    const got: string[] = [];
    const statuses: StreamStatus[] = [];
    s.subscribe((m) => got.push(m.type));
    s.onStatus((x) => statuses.push(x));
    s.start();
    await until(() => got.includes('snapshot'));
    expect(auths).toContain('auth:t1');
    for (const c of wss.clients) c.terminate();
    await until(() => got.filter((x) => x === 'snapshot').length === 2);
    expect(auths).toContain('auth:t2');
    expect(statuses).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    s.stop();
    expect(s.status).toBe('stopped');
  });

  it('reports a refused token as unauthorized', async () => {
    const s = new EventStream({ url, token: () => 'refused', WebSocketImpl: NodeWebSocket as unknown as typeof WebSocket });
    s.start();
    await until(() => s.status === 'unauthorized');
    s.stop();
  });
});

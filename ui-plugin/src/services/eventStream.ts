// The live-event WebSocket client: first-message auth, reconnect with backoff, ping.
import type { ClientMessage, ServerMessage } from '../../../backend/src/api/contract';
import { reconnectDelayMs } from '../logic/backoff';

/** The contract's WS_CLOSE.unauthorized (the UI keeps its own copy, it bundles nothing of the backend). */
const CLOSE_UNAUTHORIZED = 4401;
const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;

export type StreamStatus = 'connecting' | 'open' | 'reconnecting' | 'unauthorized' | 'stopped';

export interface EventStreamOptions {
  url: string;
  /** Read at every (re)connect: the token may have been renewed. */
  token: () => string;
  WebSocketImpl?: typeof WebSocket;
}

type Listener = (m: ServerMessage) => void;
type StatusListener = (s: StreamStatus) => void;

/**
 * The live-event socket (`/api/v1/events`): authenticates with its first message (the token
 * never goes into the URL), reconnects with backoff and authenticates again; after each
 * reconnect the service's `snapshot` brings the jobs up to date. A client ping detects a dead
 * connection the browser has not noticed.
 */
export class EventStream {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private pongDeadline: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<Listener>();
  private statusListeners = new Set<StatusListener>();
  private current: StreamStatus = 'stopped';

  constructor(private readonly opts: EventStreamOptions) {}

  get status(): StreamStatus {
    return this.current;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onStatus(l: StatusListener): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }

  start(): void {
    if (this.current !== 'stopped') return;
    this.setStatus('connecting');
    this.connect();
  }

  stop(): void {
    this.clearTimers();
    this.setStatus('stopped');
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
  }

  private setStatus(s: StreamStatus): void {
    if (s === this.current) return;
    this.current = s;
    for (const l of [...this.statusListeners]) {
      try {
        l(s);
      } catch (err) {
        console.error('olvm-backup: status listener failed', err);
      }
    }
  }

  private connect(): void {
    const Impl = this.opts.WebSocketImpl ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Impl(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const auth: ClientMessage = { type: 'auth', token: this.opts.token() };
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev: MessageEvent) => {
      let m: ServerMessage;
      try {
        m = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return;
      }
      if (m.type === 'ready') {
        this.attempt = 0;
        this.setStatus('open');
        this.startPing(ws);
      } else if (m.type === 'pong' && this.pongDeadline) {
        clearTimeout(this.pongDeadline);
        this.pongDeadline = null;
      }
      for (const l of [...this.listeners]) {
        try {
          l(m);
        } catch (err) {
          console.error('olvm-backup: event listener failed', err);
        }
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      if (this.current === 'stopped') return;
      this.scheduleReconnect(ev.code === CLOSE_UNAUTHORIZED);
    };
    ws.onerror = () => {
      // onclose follows and reconnects
    };
  }

  private startPing(ws: WebSocket): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (ws.readyState !== 1 /* OPEN */) return;
      const ping: ClientMessage = { type: 'ping' };
      ws.send(JSON.stringify(ping));
      if (!this.pongDeadline) this.pongDeadline = setTimeout(() => ws.close(4000, 'no pong'), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  private scheduleReconnect(unauthorized = false): void {
    this.setStatus(unauthorized ? 'unauthorized' : 'reconnecting');
    // a refused token is retried slowly: the portal may hand out a renewed one
    const delay = unauthorized ? Math.max(10_000, reconnectDelayMs(this.attempt)) : reconnectDelayMs(this.attempt);
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.current === 'stopped') return;
      this.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.timer = null;
    this.pingTimer = null;
    this.pongDeadline = null;
  }
}

import { promises as fs } from 'fs';
import * as net from 'net';

/**
 * The guest side of a QEMU guest agent channel, for tests (the test VMs run no guest OS): a unix
 * socket server at the path where the product looks for the agent, speaking the qemu-ga
 * protocol (0xFF resets the parser; `guest-sync-delimited` answered after a 0xFF; one JSON
 * object per line). It records every command it receives, in order, into `log` — an array the
 * test may share with other recorders (QMP commands) to check the order of the two.
 *
 * Behaviours: `ok`; `silent` (accepts connections, never answers anything); `freeze-fails`
 * (guest-fsfreeze-freeze answers an error); `hang-thaw` (guest-fsfreeze-thaw never answers, the
 * guest stays frozen). `staleBytes` are sent on every new connection before anything else, as
 * a previous client's unread reply would be.
 */
export type FakeAgentBehaviour = 'ok' | 'silent' | 'freeze-fails' | 'hang-thaw';

export interface AgentLogEntry {
  source: string;
  what: string;
  at: number;
}

export class FakeGuestAgent {
  frozen = false;
  behaviour: FakeAgentBehaviour = 'ok';
  filesystems = 3;
  staleBytes: Buffer | undefined;
  /** Called with each command before it is answered (tests act at that moment). */
  onCommand: ((command: string) => void) | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(readonly socketPath: string, private readonly server: net.Server, readonly log: AgentLogEntry[]) {}

  static async start(socketPath: string, log: AgentLogEntry[] = []): Promise<FakeGuestAgent> {
    await fs.rm(socketPath, { force: true });
    const server = net.createServer();
    const agent = new FakeGuestAgent(socketPath, server, log);
    server.on('connection', (s) => agent.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    return agent;
  }

  /** The commands received, in order (guest-sync-delimited included). */
  commands(): string[] {
    return this.log.filter((e) => e.source === 'qga').map((e) => e.what);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await fs.rm(this.socketPath, { force: true });
  }

  private serve(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    if (this.staleBytes) s.write(this.staleBytes);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // 0xFF: the client resets our parser
      const ff = buf.lastIndexOf(0xff);
      if (ff >= 0) buf = buf.subarray(ff + 1);
      for (;;) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) break;
        const line = buf.subarray(0, nl).toString('utf8').trim();
        buf = buf.subarray(nl + 1);
        if (line) this.handle(s, line);
      }
    });
  }

  private handle(s: net.Socket, line: string): void {
    let msg: { execute?: string; arguments?: Record<string, unknown> };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      s.write(JSON.stringify({ error: { class: 'GenericError', desc: 'JSON parse error' } }) + '\n');
      return;
    }
    const cmd = msg.execute ?? '?';
    this.log.push({ source: 'qga', what: cmd, at: Date.now() });
    this.onCommand?.(cmd);
    if (this.behaviour === 'silent') return;
    const reply = (r: unknown): void => {
      s.write(JSON.stringify({ return: r }) + '\n');
    };
    const error = (desc: string): void => {
      s.write(JSON.stringify({ error: { class: 'GenericError', desc } }) + '\n');
    };
    switch (cmd) {
      case 'guest-sync-delimited':
        s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(JSON.stringify({ return: msg.arguments?.['id'] }) + '\n')]));
        return;
      case 'guest-ping':
        reply({});
        return;
      case 'guest-fsfreeze-status':
        reply(this.frozen ? 'frozen' : 'thawed');
        return;
      case 'guest-fsfreeze-freeze':
        if (this.behaviour === 'freeze-fails') {
          error('failed to freeze /data: Operation not supported');
          return;
        }
        if (this.frozen) {
          error('Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state');
          return;
        }
        this.frozen = true;
        reply(this.filesystems);
        return;
      case 'guest-fsfreeze-thaw':
        if (this.behaviour === 'hang-thaw') return;
        reply(this.frozen ? this.filesystems : 0);
        this.frozen = false;
        return;
      default:
        error(`The command ${cmd} has not been found`);
    }
  }
}

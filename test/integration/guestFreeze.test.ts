import * as os from 'os';
import * as path from 'path';
import type { BackupRequest, BackupResult } from '../../backend/src/backup';
import { AppError } from '../../backend/src/errors';
import { LocalHost } from '../../backend/src/hosts';
import { GuestAgentClient, type QmpSession } from '../../backend/src/qmp';
import { BackupFixture, expectSameBytes } from '../helpers/backupFixture';
import { FakeGuestAgent, type AgentLogEntry } from '../helpers/fakeGuestAgent';

const MiB = 1 << 20;
const D0 = 'virtio-disk0';

/**
 * The product's monitor session, recording each QMP command into the log the fake agent writes
 * to (one process, one array: push order is the order things happened). `failTransaction`
 * adds an action QEMU refuses, so the whole transaction fails inside QEMU.
 */
function recordingSession(inner: QmpSession, log: AgentLogEntry[], opts: { failTransaction?: boolean } = {}): QmpSession {
  return {
    execute: (async (name: string, args: Record<string, unknown>, o?: object) => {
      log.push({ source: 'qmp', what: `${name}:start`, at: Date.now() });
      let sent = args;
      if (name === 'transaction' && opts.failTransaction) {
        const actions = (args['actions'] as unknown[]) ?? [];
        sent = { actions: [...actions, { type: 'block-dirty-bitmap-add', data: { node: 'no-such-node', name: 'x' } }] };
      }
      try {
        return await (inner.execute as (n: string, a: unknown, o?: object) => Promise<unknown>)(name, sent, o);
      } finally {
        log.push({ source: 'qmp', what: `${name}:end`, at: Date.now() });
      }
    }) as QmpSession['execute'],
    onEvent: (l) => inner.onEvent(l),
    onClose: (l) => inner.onClose(l),
    get closed() {
      return inner.closed;
    },
    close: () => inner.close(),
  };
}

describe('guest filesystem freeze around the backup transaction (fake guest agent on the channel)', () => {
  let f: BackupFixture;
  let agent: FakeGuestAgent;
  let log: AgentLogEntry[];
  let agentPath: string;

  beforeAll(async () => {
    f = await BackupFixture.create('qga', [{ id: D0, format: 'qcow2', size: 32 * MiB }]);
    agentPath = path.join(f.dir, 'vm1.qga');
    agent = await FakeGuestAgent.start(agentPath);
    log = agent.log;
  });
  afterAll(async () => {
    await agent?.stop();
    await f?.dispose();
  });
  beforeEach(() => {
    log.length = 0;
    agent.behaviour = 'ok';
    agent.frozen = false;
    agent.staleBytes = undefined;
  });

  /** A backup whose agent is found through the host link, as the engine-aware backup does. */
  async function backup(extra: Partial<BackupRequest> = {}, session: { failTransaction?: boolean } = {}): Promise<BackupResult> {
    const host = new LocalHost({ guestAgentSocket: () => agentPath });
    const qmp = recordingSession(await f.productQmp(), log, session);
    return f.backup({ host, qmp, guestAgent: () => host.openGuestAgent({ id: 'vm1', name: 'vm1' }), ...extra });
  }

  const qmpAndFreeze = (): string[] =>
    log
      .filter((e) => (e.source === 'qga' ? e.what.startsWith('guest-fsfreeze-') && e.what !== 'guest-fsfreeze-status' : e.what.startsWith('transaction')))
      .map((e) => e.what);

  test('freeze before the transaction, thaw right after it; the point is filesystem-consistent and restores exactly', async () => {
    await f.vm.writeRandom(D0, 0, 3 * MiB);
    const onFrozenAt: number[] = [];
    const res = await backup({ onFrozen: () => void onFrozenAt.push(log.length) });
    expect(res.manifest.consistency).toBe('filesystem');
    expect(res.manifest.meta['consistencyReason']).toBe('froze 3 filesystems');
    expect(res.warnings).toEqual([]);
    expect(agent.frozen).toBe(false);
    // protocol: sync first, then ping, status, freeze
    expect(agent.commands().slice(0, 4)).toEqual(['guest-sync-delimited', 'guest-ping', 'guest-fsfreeze-status', 'guest-fsfreeze-freeze']);
    expect(qmpAndFreeze()).toEqual(['guest-fsfreeze-freeze', 'transaction:start', 'transaction:end', 'guest-fsfreeze-thaw']);
    // nothing else reached QEMU between the freeze and the thaw, and the thaw came before any data was read
    const freeze = log.findIndex((e) => e.what === 'guest-fsfreeze-freeze');
    const thaw = log.findIndex((e) => e.what === 'guest-fsfreeze-thaw');
    expect(log.slice(freeze + 1, thaw).map((e) => e.what)).toEqual(['transaction:start', 'transaction:end']);
    expect(onFrozenAt[0]).toBeGreaterThan(thaw);
    // the manifest on disk says so too
    const stored = await f.repo.readManifest(res.manifest.pointId);
    expect(stored.consistency).toBe('filesystem');
    expect(stored.meta['consistencyReason']).toBe('froze 3 filesystems');
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'filesystem-consistent full');
  });

  test('stale bytes on the channel are skipped by the sync', async () => {
    agent.staleBytes = Buffer.from('{"return": 42}\n{"return": {}}\n{"retu');
    await f.vm.writeRandom(D0, 5 * MiB, MiB);
    const res = await backup();
    expect(res.manifest.consistency).toBe('filesystem');
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'incremental after stale bytes');
  });

  test('a failing transaction still thaws the guest', async () => {
    await f.vm.writeRandom(D0, 8 * MiB, MiB);
    const before = (await f.repo.listPoints()).length;
    const err = await backup({}, { failTransaction: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('BACKUP_FAILED');
    expect(qmpAndFreeze()).toEqual(['guest-fsfreeze-freeze', 'transaction:start', 'transaction:end', 'guest-fsfreeze-thaw']);
    expect(agent.frozen).toBe(false);
    expect((await f.repo.listPoints()).length).toBe(before);
    // and the next backup is whole
    const res = await backup();
    expect(res.manifest.consistency).toBe('filesystem');
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'after a failed transaction');
  });

  test('an agent that never answers the ping: crash-consistent with the reason, the backup succeeds', async () => {
    agent.behaviour = 'silent';
    await f.vm.writeRandom(D0, 12 * MiB, MiB);
    const started = Date.now();
    const res = await backup(); // default ping timeout: 2 s
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^guest agent not answering: .*timed out after 2000 ms/);
    expect(agent.commands()).not.toContain('guest-fsfreeze-freeze');
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'crash-consistent incremental');
  });

  test('no agent channel at all: crash-consistent, says why', async () => {
    const host = new LocalHost({ guestAgentSocket: () => path.join(f.dir, 'nobody.qga') });
    const res = await f.backup({ host, guestAgent: () => host.openGuestAgent({ id: 'vm1', name: 'vm1' }) });
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^guest agent not answering: guest agent of vm vm1 .*cannot connect/);
    const none = await f.backup();
    expect(none.manifest.meta['consistencyReason']).toBe('no guest agent channel known for this vm');
  });

  test('a freeze the guest refuses: crash-consistent with the reason, and the guest is thawed anyway', async () => {
    agent.behaviour = 'freeze-fails';
    await f.vm.writeRandom(D0, 14 * MiB, MiB);
    const res = await backup();
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toMatch(/^freeze failed: .*Operation not supported/);
    expect(qmpAndFreeze()).toEqual(['guest-fsfreeze-freeze', 'transaction:start', 'transaction:end', 'guest-fsfreeze-thaw']);
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'after a refused freeze');
  });

  test('an agent that hangs on thaw: thaw retried once, the timeout is a warning on the result', async () => {
    agent.behaviour = 'hang-thaw';
    await f.vm.writeRandom(D0, 16 * MiB, MiB);
    const res = await backup({ guestAgentTimeouts: { thawMs: 500 } });
    expect(res.manifest.consistency).toBe('filesystem'); // the point was taken frozen
    expect(res.warnings).toEqual([expect.stringMatching(/^guest filesystems may still be frozen: thaw failed twice .*timed out after 500 ms/)]);
    expect(agent.commands().filter((c) => c === 'guest-fsfreeze-thaw')).toHaveLength(2);
    expectSameBytes(await f.restored(res.manifest.pointId, D0), f.vm.snapshot(D0), 'with a stuck thaw');
    agent.frozen = false;
  });

  test('a guest someone else froze is not thawed by the backup, and the result says it is frozen', async () => {
    agent.frozen = true;
    const res = await backup();
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toBe('guest filesystems were already frozen by someone else');
    expect(res.warnings).toEqual(['guest filesystems were frozen before the backup, not by it, and were left frozen']);
    expect(agent.commands().filter((c) => c === 'guest-fsfreeze-thaw' || c === 'guest-fsfreeze-freeze')).toEqual([]);
    expect(agent.frozen).toBe(true);
    agent.frozen = false;
  });

  test('an aborted backup between freeze and transaction still thaws', async () => {
    const ctl = new AbortController();
    agent.onCommand = (cmd) => {
      if (cmd === 'guest-fsfreeze-freeze') ctl.abort(new Error('stop'));
    };
    try {
      await expect(backup({ signal: ctl.signal })).rejects.toMatchObject({ code: 'BACKUP_ABORTED' });
    } finally {
      agent.onCommand = undefined;
    }
    expect(qmpAndFreeze()).toEqual(['guest-fsfreeze-freeze', 'guest-fsfreeze-thaw']);
    expect(agent.frozen).toBe(false);
  });

  test("consistency 'crash' opts out: the agent is not even asked", async () => {
    const res = await backup({ consistency: 'crash' });
    expect(res.manifest.consistency).toBe('crash');
    expect(res.manifest.meta['consistencyReason']).toBe('crash-consistent by request');
    expect(agent.commands()).toEqual([]);
  });
});

describe('guest agent client', () => {
  let agent: FakeGuestAgent;
  const sock = path.join(os.tmpdir(), `olvm-qga-${process.pid}.sock`);
  beforeAll(async () => {
    agent = await FakeGuestAgent.start(sock);
  });
  afterAll(async () => agent?.stop());

  test('freeze / status / thaw, and a timeout resyncs the stream', async () => {
    const c = await GuestAgentClient.connectUnix(sock);
    try {
      await c.ping();
      expect(await c.fsfreezeFreeze()).toBe(3);
      expect(await c.fsfreezeStatus()).toBe('frozen');
      agent.behaviour = 'silent';
      await expect(c.fsfreezeThaw({ timeoutMs: 200 })).rejects.toMatchObject({ code: 'QGA_TIMEOUT' });
      agent.behaviour = 'ok';
      expect(await c.fsfreezeThaw()).toBe(3);
      expect(await c.fsfreezeStatus()).toBe('thawed');
      const cmds = agent.commands();
      // the silent thaw, then a fresh sync before the next thaw
      expect(cmds.slice(-4)).toEqual(['guest-fsfreeze-thaw', 'guest-sync-delimited', 'guest-fsfreeze-thaw', 'guest-fsfreeze-status']);
      await expect(c.execute('guest-no-such')).rejects.toMatchObject({ code: 'QGA_COMMAND_FAILED' });
    } finally {
      await c.close();
    }
    await expect(GuestAgentClient.connectUnix(`${sock}.missing`)).rejects.toMatchObject({ code: 'QGA_UNAVAILABLE' });
  });
});

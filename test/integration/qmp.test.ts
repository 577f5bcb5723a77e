import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Duplex, PassThrough } from 'stream';
import { AppError } from '../../backend/src/errors';
import { BlockApi, BlockJob, QmpClient, qmpErrorClass, type QmpEvent } from '../../backend/src/qmp';
import { TestVm } from '../helpers/qemuVm';

describe('qmp client against real QEMU', () => {
  let dir: string;
  let vm: TestVm;
  let qmp: QmpClient;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-qmp-'));
    vm = await TestVm.create(dir, [{ id: 'virtio-disk0', format: 'qcow2', size: 16 << 20 }]);
    qmp = await QmpClient.connectUnix(vm.productQmp);
  });

  afterAll(async () => {
    await qmp?.close();
    await vm?.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('greeting and capabilities negotiated; commands answer', async () => {
    expect(qmp.greeting?.version.major).toBeGreaterThanOrEqual(7);
    const status = await qmp.execute('query-status', {});
    expect(status.status).toBe('prelaunch');
  });

  test('a refused command becomes a coded error with the QMP class and description', async () => {
    const err = await qmp.execute('block-dirty-bitmap-remove', { node: 'libvirt-1-format', name: 'nope' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('QMP_COMMAND_FAILED');
    expect(qmpErrorClass(err)).toBe('GenericError');
    expect((err as AppError).message).toMatch(/nope/);
  });

  test('events reach subscribers, also when they arrive before the reply', async () => {
    const seen: string[] = [];
    const off = qmp.onEvent((e: QmpEvent) => seen.push(e.event));
    const stopped = qmp.waitForEvent((e) => e.event === 'STOP', { timeoutMs: 5000, what: 'STOP' });
    await qmp.execute('cont', {});
    await qmp.execute('stop', {});
    await stopped;
    off();
    expect(seen).toEqual(expect.arrayContaining(['RESUME', 'STOP']));
  });

  test('block api lists the disk by device id with its top node', async () => {
    const api = new BlockApi(qmp);
    const devices = await api.listDevices();
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({
      deviceId: 'virtio-disk0',
      nodeName: 'libvirt-1-format',
      format: 'qcow2',
      virtualSize: 16 << 20,
      canPersistBitmaps: true,
      readOnly: false,
    });
  });

  test('a fleecing job is followed through its events and cancelled cleanly', async () => {
    const api = new BlockApi(qmp);
    const scratch = path.join(dir, 'fleece.qcow2');
    const { runTool } = await import('../../backend/src/util/exec');
    await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', scratch, String(16 << 20)]);
    await api.addOverlay({ nodeName: 'fl', filename: scratch, backingNode: 'libvirt-1-format' });
    const job = BlockJob.watch(qmp, 'fl-job');
    try {
      await api.transaction([{ kind: 'fleeceBackup', jobId: 'fl-job', device: 'libvirt-1-format', target: 'fl' }]);
      expect(await api.jobIds()).toContain('fl-job');
      await job.cancel({ timeoutMs: 10_000 });
      expect(job.result).toEqual({ kind: 'cancelled' });
      expect(await api.jobIds()).not.toContain('fl-job');
    } finally {
      job.dispose();
      await api.deleteNode('fl');
    }
    expect(await api.nodeExists('fl')).toBe(false);
  });

  test('a second client on a busy monitor times out instead of hanging', async () => {
    const err = await QmpClient.connectUnix(vm.productQmp, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('QMP_TIMEOUT');
  });

  test('no such socket is a connect error naming the path', async () => {
    const err = await QmpClient.connectUnix(path.join(dir, 'missing.sock')).catch((e: unknown) => e);
    expect((err as AppError).code).toBe('QMP_CONNECT_FAILED');
    expect((err as AppError).message).toContain('missing.sock');
  });
});

describe('qmp client framing and failure paths (scripted peer)', () => {
  /** A scripted QMP peer on an in-process stream pair: lets a test send exactly the bytes QEMU
   *  would, in orders that are hard to provoke from a real QEMU. */
  function pair(): { client: Duplex; serverIn: PassThrough; serverOut: PassThrough } {
    const serverIn = new PassThrough(); // what the client writes
    const serverOut = new PassThrough(); // what the client reads
    const client = Duplex.from({ readable: serverOut, writable: serverIn });
    return { client, serverIn, serverOut };
  }
  const greeting = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "x"}, "capabilities": ["oob"]}}\r\n';

  async function connected(): Promise<{ qmp: QmpClient; sent: string[]; serverOut: PassThrough }> {
    const { client, serverIn, serverOut } = pair();
    const sent: string[] = [];
    serverIn.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        const msg = JSON.parse(line) as { execute: string; id: string };
        sent.push(msg.execute);
        if (msg.execute === 'qmp_capabilities') serverOut.write(`{"return": {}, "id": "${msg.id}"}\r\n`);
      }
    });
    serverOut.write(greeting);
    const qmp = await QmpClient.overStream(client, { label: 'scripted' });
    return { qmp, sent, serverOut };
  }

  test('replies split across reads and multi-byte characters survive framing', async () => {
    const { qmp, serverOut } = await connected();
    const p = qmp.execute('human-monitor-command', { 'command-line': 'x' });
    const reply = Buffer.from('{"return": "héllo ✓", "id": "olvm-2"}\r\n');
    serverOut.write(reply.subarray(0, 17));
    serverOut.write(reply.subarray(17));
    await expect(p).resolves.toBe('héllo ✓');
    await qmp.close();
  });

  test('a closed connection rejects every pending command', async () => {
    const { qmp, serverOut } = await connected();
    const a = qmp.execute('query-status', {});
    const b = qmp.execute('query-block', {});
    serverOut.end();
    await expect(a).rejects.toMatchObject({ code: 'QMP_DISCONNECTED' });
    await expect(b).rejects.toMatchObject({ code: 'QMP_DISCONNECTED' });
    await expect(qmp.execute('query-status', {})).rejects.toMatchObject({ code: 'QMP_DISCONNECTED' });
  });

  test('per-command timeout and abort signal', async () => {
    const { qmp } = await connected();
    await expect(qmp.execute('query-status', {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'QMP_TIMEOUT' });
    const ctl = new AbortController();
    const p = qmp.execute('query-status', {}, { signal: ctl.signal });
    ctl.abort();
    await expect(p).rejects.toMatchObject({ code: 'QMP_ABORTED' });
    await qmp.close();
  });

  test('garbage on the wire is a protocol error that closes the connection', async () => {
    const { qmp, serverOut } = await connected();
    const p = qmp.execute('query-status', {});
    serverOut.write('this is not json\r\n');
    await expect(p).rejects.toMatchObject({ code: 'QMP_DISCONNECTED' });
    expect(qmp.closed).toBe(true);
  });

  test('block job outcome: completed with error field means failed', async () => {
    const { qmp, serverOut } = await connected();
    const job = BlockJob.watch(qmp, 'j1');
    serverOut.write('{"event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "j1"}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n');
    serverOut.write('{"event": "BLOCK_JOB_COMPLETED", "data": {"device": "j1", "len": 1, "offset": 0, "speed": 0, "type": "backup", "error": "Input/output error"}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n');
    await expect(job.waitFinished({ timeoutMs: 2000 })).resolves.toEqual({ kind: 'failed', error: 'Input/output error' });
    job.dispose();
    await qmp.close();
  });
});

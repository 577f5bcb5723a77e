/**
 * File-level restore through the service (Browse files…): web01's first disk holds the
 * four-filesystem fixture (test/helpers/fsDisk.ts), backed up through the engine simulator; the
 * operator (who may download web01's disks) opens a browsing session — a real libguestfs
 * appliance over the service's NBD export of the point, launched once for the file — lists,
 * searches and downloads byte-exact (a file; a folder's .tar.gz extracted and compared); bad
 * paths are 400 with the core's words, a file over a damaged chunk 422, and the session goes on;
 * a user without the download
 * permits is refused naming the permit; a second session beyond fileRestore.maxSessions is 429
 * naming the holders the caller may know of; the session closes when idle; every action is in
 * the audit log with who and what.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as S from '../../backend/src/api/schemas';
import { runTool } from '../../backend/src/util/exec';
import { EngineSim, type SimVm } from '../engine-sim';
import { buildFsDisk, type FsDisk } from '../helpers/fsDisk';
import { apiClient, ssoToken, startServiceProcess, type ServiceProcess } from '../helpers/serviceProcess';
import { backupDone, eventually, withRepository } from '../helpers/serviceWaits';
import { blobLocation, flipByte } from './packFixture';
import { requireTools } from '../helpers/tools';

requireTools('guestfish', 'qemu-system-x86_64', 'qemu-img', 'qemu-nbd', 'tar');
jest.setTimeout(900_000);

type Api = ReturnType<typeof apiClient>;
const IDLE_SECONDS = 20;
/** The operator as the service names him (user@authz of the engine). */
const OPERATOR = /^operator@internal(-authz)?$/;

describe('file-level restore through the service (engine simulator, a real appliance, a real service process)', () => {
  let dir: string;
  let sim: EngineSim;
  let svc: ServiceProcess;
  let admin: Api;
  let operator: Api;
  let operatorToken: string;
  let web: SimVm;
  let disk: FsDisk;
  let webPoint: string;
  let dbPoint: string;
  let base: string;

  const fetchBytes = async (p: string): Promise<{ status: number; headers: Headers; bytes: Buffer }> => {
    const r = await fetch(`${svc.url}${p}`, { headers: { Authorization: `Bearer ${operatorToken}` } });
    return { status: r.status, headers: r.headers, bytes: Buffer.from(await r.arrayBuffer()) };
  };
  const q = (o: Record<string, string>): string => new URLSearchParams(o).toString();

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-files-api-'));
    disk = await buildFsDisk(await fs.mkdtemp(path.join(dir, 'fixture-')));
    sim = await EngineSim.start({ dataDir: path.join(dir, 'sim'), tls: true });
    svc = await startServiceProcess({ sim, dataDir: path.join(dir, 'svc'), config: `fileRestore: { idleSeconds: ${IDLE_SECONDS}, maxSessions: 1 }\n` });
    admin = apiClient(svc.url, await ssoToken(sim, 'admin'));
    operatorToken = await ssoToken(sim, 'operator');
    operator = apiClient(svc.url, operatorToken);
    web = sim.vmByName('web01');
    await sim.guestWrite(web.id, web.disks[0]!.id, 0, await fs.readFile(disk.image));
    webPoint = (await backupDone(admin, web.id)).result!.pointId;
    dbPoint = (await backupDone(admin, sim.vmByName('db01').id)).result!.pointId;
    // damage one stored chunk wholly inside damaged.bin (read by one test only, so no cache holds it)
    const image = await fs.readFile(disk.image);
    const at = image.indexOf(disk.damaged.data.subarray(1 << 20, (1 << 20) + 64)) - (1 << 20);
    const repoDir = path.join(dir, 'svc', 'repository');
    const { digest, cs } = await withRepository(repoDir, async (repo) => {
      const chunk = Math.ceil(at / repo.chunkSize);
      const [from, to] = [chunk * repo.chunkSize, (chunk + 1) * repo.chunkSize];
      expect(to).toBeLessThanOrEqual(at + disk.damaged.data.length);
      expect(image.subarray(from, to).equals(disk.damaged.data.subarray(from - at, to - at))).toBe(true);
      return { digest: (await repo.readIndex(webPoint, web.disks[0]!.deviceId)).digestHex(chunk), cs: repo.chunkSize };
    });
    expect(cs).toBeGreaterThan(0);
    const loc = await blobLocation(repoDir, digest);
    await flipByte(loc.file, loc.offset + Math.floor(loc.storedLength / 2));
    base = `/api/v1/points/${webPoint}/files`;
  });

  afterAll(async () => {
    await svc?.stop();
    await sim?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  test('a user who sees web01 but may not download its disks is refused naming the permit; nothing is opened', async () => {
    const plain = apiClient(svc.url, await ssoToken(sim, 'plain'));
    for (const [method, p] of [
      ['post', `${base}/session`],
      ['get', `${base}/list?${q({ fs: '/dev/sda1', path: '/' })}`],
      ['get', `${base}/download?${q({ fs: '/dev/sda1', path: '/docs/readme.txt' })}`],
    ] as const) {
      const r = method === 'post' ? await plain.post(p, {}) : await plain.get(p);
      expect([p, r.status, r.body.error.code]).toEqual([p, 403, 'FORBIDDEN']);
      expect(r.body.error.message).toMatch(/may not (browse the files of|download files of) a restore point of vm web01: .*backup_disk on vm web01/);
    }
    // the grpop user may not see web01 at all: its point does not exist for him
    const grpop = apiClient(svc.url, await ssoToken(sim, 'grpop'));
    expect((await grpop.post(`${base}/session`, {})).status).toBe(404);
    expect((await operator.get(`${base}/session`)).status).toBe(404);
  });

  test('the operator opens a session: 202 opening, then ready with the four filesystems', async () => {
    const t0 = Date.now();
    const r = await operator.post(`${base}/session`, {});
    expect(r.status).toBe(202);
    expect(S.FileSessionView.parse(r.body)).toMatchObject({ pointId: webPoint, state: 'opening', filesystems: [], idleSeconds: IDLE_SECONDS });
    const ready = await eventually(async () => {
      const s = S.FileSessionView.parse((await operator.get(`${base}/session`)).body);
      if (s.state === 'failed') throw new Error(`the session failed: ${JSON.stringify(s.error)}`);
      return s.state === 'ready' ? s : undefined;
    }, 400_000);
    process.stderr.write(`files api: session ready in ${Date.now() - t0} ms\n`);
    expect(ready.sessionId).toBe(S.FileSessionView.parse(r.body).sessionId);
    // the fixture's corrupt ext4 is listed with why it does not mount (web01's second disk, the
    // simulator's random bytes, holds no filesystem)
    const broken = ready.filesystems.find((f) => f.name === '/dev/sda5');
    expect(broken).toMatchObject({ type: 'ext4', label: 'BROKEN', mounted: false, error: expect.any(String) });
    expect(ready.filesystems.filter((f) => !f.mounted && f.name !== '/dev/sda5').every((f) => f.name.startsWith('/dev/sdb'))).toBe(true);
    expect(ready.filesystems.filter((f) => f.mounted).map((f) => [f.name, f.type, f.label, f.mounted])).toEqual([
      ['/dev/sda1', 'ext4', 'EXT4DATA', true],
      ['/dev/sda2', 'vfat', 'FATDATA', true],
      ['/dev/sda3', 'xfs', 'XFSDATA', true],
      ['/dev/sda4', 'ntfs', 'NTFSDATA', true],
    ]);
    expect(ready.disks.map((d) => d.device)).toEqual(web.disks.map((d) => d.deviceId));
    // asked again: the same session, 200
    const again = await operator.post(`${base}/session`, { waitSeconds: 5 });
    expect([again.status, again.body.sessionId, again.body.state]).toEqual([200, ready.sessionId, 'ready']);
  });

  test('lists folders: exact names (newline, invalid UTF-8) in base64 beside the escaped form; by display path and by pathB64', async () => {
    const root = S.FileListResponse.parse((await operator.get(`${base}/list?${q({ fs: '/dev/sda1', path: '/' })}`)).body);
    const names = root.entries.map((e) => Buffer.from(e.nameB64, 'base64'));
    const want = [...(await fs.readdir(disk.ext4Source, { encoding: 'buffer' })), Buffer.from('lost+found')].sort(Buffer.compare);
    expect(names).toEqual(want);
    const byName = new Map(root.entries.map((e) => [e.name, e]));
    expect(byName.get('new\\nline.txt')).toMatchObject({ type: 'file', size: 22, nameB64: Buffer.from('new\nline.txt').toString('base64') });
    expect(byName.get('bad\\xff\\xfeutf8.txt')).toMatchObject({ type: 'file', size: 10 });
    expect(byName.get('docs')).toMatchObject({ type: 'directory', mode: 0o755 });
    const docs = S.FileListResponse.parse((await operator.get(`${base}/list?${q({ fs: '/dev/sda1', pathB64: Buffer.from('/docs').toString('base64') })}`)).body);
    expect(docs.path).toBe('/docs');
    expect(Object.fromEntries(docs.entries.map((e) => [e.name, e.type === 'symlink' ? e.target : e.type]))).toEqual({ 'big.bin': 'file', deeper: 'directory', escape: '/etc/passwd', inside: 'readme.txt', 'readme.txt': 'file', up: '../../../etc' });
  });

  test('finds by glob across the filesystems', async () => {
    const r = S.FileFindResponse.parse((await operator.get(`${base}/find?${q({ glob: '*.txt' })}`)).body);
    expect(r.results.map((e) => `${e.filesystem}:${e.path}`).sort()).toEqual(
      ['/dev/sda1:/bad\\xff\\xfeutf8.txt', '/dev/sda1:/café.txt', '/dev/sda1:/docs/readme.txt', '/dev/sda1:/name with spaces.txt', '/dev/sda1:/new\\nline.txt', '/dev/sda2:/vfat.txt', '/dev/sda3:/xfs.txt'].sort(),
    );
    expect(r.truncated).toBe(false);
    const one = S.FileFindResponse.parse((await operator.get(`${base}/find?${q({ glob: 'docs/**/*.md', fs: '/dev/sda1' })}`)).body);
    expect(one.results.map((e) => e.path)).toEqual(['/docs/deeper/note.md']);
    expect((await operator.get(`${base}/find`)).status).toBe(400);
  });

  test('downloads files byte-exact from each filesystem, and a folder as .tar.gz with the same bytes', async () => {
    for (const f of disk.files) {
      const got = await fetchBytes(`${base}/download?${q({ fs: f.filesystem, pathB64: f.path.toString('base64') })}`);
      const label = `${f.filesystem}:${f.path.toString('latin1')}`;
      expect([label, got.status, got.headers.get('x-file-kind'), got.bytes.equals(f.data)]).toEqual([label, 200, 'file', true]);
    }
    const nl = await fetchBytes(`${base}/download?${q({ fs: '/dev/sda1', path: '/new\\nline.txt' })}`);
    expect(nl.headers.get('content-disposition')).toBe(`attachment; filename="new_line.txt"; filename*=UTF-8''new%0Aline.txt`);

    const tgz = await fetchBytes(`${base}/download?${q({ fs: '/dev/sda1', path: '/docs' })}`);
    expect([tgz.status, tgz.headers.get('content-type'), tgz.headers.get('x-file-kind')]).toEqual([200, 'application/gzip', 'archive']);
    expect(tgz.headers.get('content-disposition')).toContain('filename="docs.tar.gz"');
    const out = path.join(dir, 'untar');
    await fs.mkdir(out);
    await fs.writeFile(path.join(dir, 'docs.tgz'), tgz.bytes);
    await runTool('tar', ['-xzf', path.join(dir, 'docs.tgz'), '-C', out]);
    const docsFiles = disk.files.filter((x) => x.filesystem === '/dev/sda1' && x.path.toString().startsWith('/docs/'));
    expect(docsFiles.length).toBe(3);
    for (const f of docsFiles) expect((await fs.readFile(path.join(out, f.path.toString().slice('/docs/'.length)))).equals(f.data)).toBe(true);
    expect(await fs.readlink(path.join(out, 'escape'))).toBe('/etc/passwd');
  });

  test("bad paths are 400 with the core's words ('..', a symlink out, a device, a fifo), a missing name 404; the session stays usable", async () => {
    const bad = async (p: string, fsName = '/dev/sda1', what = 'download'): Promise<{ status: number; code: string; message: string }> => {
      const r = await operator.get(`${base}/${what}?${q({ fs: fsName, path: p })}`);
      return { status: r.status, code: r.body.error?.code, message: r.body.error?.message };
    };
    expect(await bad('/docs/../../etc/passwd')).toMatchObject({ status: 400, code: 'FILE_REFUSED', message: expect.stringMatching(/'\.\.'/) });
    expect(await bad('/docs/escape')).toMatchObject({ status: 400, code: 'FILE_REFUSED', message: expect.stringMatching(/leads out of filesystem/) });
    expect(await bad('/docs/up', '/dev/sda1', 'list')).toMatchObject({ status: 400, code: 'FILE_REFUSED' });
    expect(await bad('/fifo')).toMatchObject({ status: 400, code: 'FILE_REFUSED', message: expect.stringMatching(/fifo/) });
    expect(await bad('/null', '/dev/sda3')).toMatchObject({ status: 400, code: 'FILE_REFUSED', message: expect.stringMatching(/char-device/) });
    expect(await bad('/nothing-here')).toMatchObject({ status: 404, code: 'FILE_NOT_FOUND' });
    expect(await bad('/', '/dev/sdz9', 'list')).toMatchObject({ status: 404, code: 'FILE_NOT_FOUND', message: expect.stringMatching(/no mounted filesystem \/dev\/sdz9/) });
    expect(await bad('/a\\q')).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT' });
    const still = await fetchBytes(`${base}/download?${q({ fs: '/dev/sda2', path: '/vfat.txt' })}`);
    expect([still.status, still.bytes.toString()]).toEqual([200, 'vfat file\n']);
  });

  test('a file over a damaged chunk is 422 FILE_UNREADABLE in clear words; the session answers the next request', async () => {
    const r = await operator.get(`${base}/download?${q({ fs: disk.damaged.filesystem, pathB64: disk.damaged.path.toString('base64') })}`);
    expect([r.status, r.body.error?.code]).toEqual([422, 'FILE_UNREADABLE']);
    expect(r.body.error.message).toMatch(/damaged\.bin: the point's data there cannot be read \(damaged chunks or a corrupt filesystem/);
    const next = await fetchBytes(`${base}/download?${q({ fs: '/dev/sda1', path: '/docs/readme.txt' })}`);
    expect([next.status, next.bytes.toString()]).toEqual([200, 'the ext4 readme\n']);
  });

  test('a session beyond fileRestore.maxSessions is 429 naming the limit, and the holders only to whom may know them', async () => {
    // the operator's own session is named to him
    const otherPoint = (await backupDone(admin, web.id)).result!.pointId;
    const mine = await operator.post(`/api/v1/points/${otherPoint}/files/session`, {});
    expect([mine.status, mine.body.error.code]).toEqual([429, 'TOO_MANY_REQUESTS']);
    expect(mine.body.error.message).toMatch(new RegExp(`limited to 1 session\\(s\\) at once \\(fileRestore\\.maxSessions\\).*operator@internal(-authz)? on restore point ${webPoint}`));
    // grpop (db01 only) is told the limit, not who holds it
    const grpop = apiClient(svc.url, await ssoToken(sim, 'grpop'));
    const theirs = await grpop.post(`/api/v1/points/${dbPoint}/files/session`, {});
    expect([theirs.status, theirs.body.error.code]).toEqual([429, 'TOO_MANY_REQUESTS']);
    expect(theirs.body.error.message).toMatch(/\(1 of other users\)/);
    expect(theirs.body.error.message).not.toMatch(/operator|web01|restore point/);
    // a backup admin sees who
    const adm = await admin.post(`/api/v1/points/${dbPoint}/files/session`, {});
    expect(adm.body.error.message).toMatch(new RegExp(`operator@internal(-authz)? on restore point ${webPoint}`));
  });

  test('every action is in the audit log with who and what', async () => {
    const entries = await eventually(async () => {
      const r = S.AuditList.parse((await admin.get(`/api/v1/audit?action=file-restore&vmId=${web.id}`)).body).entries;
      return r.some((e) => e.reason === 'download') ? r : undefined;
    });
    for (const a of ['open', 'list', 'find', 'download']) expect(entries.find((e) => e.reason === a)).toMatchObject({ actor: expect.stringMatching(OPERATOR), pointId: webPoint });
    expect(entries.find((e) => e.reason === 'download' && e.details?.['path'] === '/docs')).toMatchObject({ pointId: webPoint, vmKey: web.id, details: { filesystem: '/dev/sda1', outcome: 'ok' } });
    expect(entries.find((e) => e.reason === 'download' && e.details?.['path'] === '/fifo')).toMatchObject({ details: { outcome: 'FILE_REFUSED' } });
    expect(entries.find((e) => e.reason === 'find')).toMatchObject({ details: { glob: expect.any(String) } });
  });

  test(`the session closes after ${IDLE_SECONDS} s without a request (audited); DELETE closes one at once`, async () => {
    const t0 = Date.now();
    const closed = await eventually(async () => ((await operator.get(`${base}/session`)).status === 404 ? true : undefined), (IDLE_SECONDS + 30) * 1000);
    expect(closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual((IDLE_SECONDS - 5) * 1000);
    expect((await operator.get(`${base}/list?${q({ fs: '/dev/sda1' })}`)).body.error.message).toMatch(/no file-browsing session is open/);
    const audit = S.AuditList.parse((await admin.get(`/api/v1/audit?action=file-restore&vmId=${web.id}`)).body).entries;
    expect(audit.find((e) => e.reason === 'close')).toMatchObject({ actor: expect.stringMatching(OPERATOR), details: { why: `idle for ${IDLE_SECONDS} s` } });
    // a session closed while it still opens: nothing stays open
    const r = await operator.post(`${base}/session`, {});
    expect(r.status).toBe(202);
    const del = await operator.raw('DELETE', `${base}/session`);
    expect(del.status).toBe(204);
    expect((await operator.get(`${base}/session`)).status).toBe(404);
    expect((await operator.raw('DELETE', `${base}/session`)).status).toBe(404);
    // its appliance still starts (then stops): it counts toward maxSessions until it is gone,
    // so a DELETE/POST loop cannot start appliances beyond the limit
    const again = await operator.post(`${base}/session`, {});
    expect([again.status, again.body.error?.code]).toEqual([429, 'TOO_MANY_REQUESTS']);
    expect(again.body.error.message).toMatch(/1 closed while opening, still stopping/);
    const later = await eventually(async () => {
      const x = await operator.post(`${base}/session`, {});
      return x.status === 429 ? undefined : x;
    }, 400_000);
    expect(later.status).toBe(202);
    // closed while opening again: the service's stop (afterAll) waits for this appliance
    expect((await operator.raw('DELETE', `${base}/session`)).status).toBe(204);
  });
});

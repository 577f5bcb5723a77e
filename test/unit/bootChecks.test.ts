/**
 * The stored boot-check record (repository/bootChecks.ts): written and read back with its
 * screenshot beside it, replaced by a newer check, kept free of guest output in an encrypted
 * repository, refused for a name that is no point id, and a damaged record reported as such.
 */
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BOOTCHECKS_DIR, bootCheckScreenshotPath, clearBootCheck, readBootCheck, writeBootCheck, type BootCheckRecord } from '../../backend/src/repository';
import { expectCode } from '../helpers/expectCode';

const POINT = '20261208T010000Z-0123456789ab';

function record(over: Partial<BootCheckRecord> = {}): BootCheckRecord {
  return {
    pointId: POINT,
    disks: ['vda'],
    state: 'ok',
    reason: 'the console showed a sign of life: debian login:',
    matchedLine: 'debian login:',
    consoleTail: ['Debian GNU/Linux 12 debian ttyS0', 'debian login:'],
    accel: 'tcg',
    noNetworkDevice: true,
    startedAt: '2026-12-08T01:00:00.000Z',
    durationMs: 1234,
    actor: 'test',
    screenshot: null,
    ...over,
  };
}

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-bootchecks-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('a record and its screenshot are stored, read back, replaced by the next check and cleared', async () => {
  expect(await readBootCheck(root, POINT)).toBeNull();
  const shot = path.join(root, 'shot.png');
  await fs.writeFile(shot, Buffer.from('png bytes'));
  const stored = await writeBootCheck(root, record(), shot, false);
  expect(stored).toEqual(record({ screenshot: `${POINT}.png` }));
  expect(await readBootCheck(root, POINT)).toEqual(stored);
  expect((await fs.readFile(bootCheckScreenshotPath(root, stored) as string)).toString()).toBe('png bytes');
  // a later check (ppm this time) replaces record and screenshot
  const ppm = path.join(root, 'shot.ppm');
  await fs.writeFile(ppm, Buffer.from('ppm bytes'));
  await writeBootCheck(root, record({ state: 'timeout', reason: 'no sign of life within 5 s' }), ppm, false);
  expect((await fs.readdir(path.join(root, BOOTCHECKS_DIR))).sort()).toEqual([`${POINT}.json`, `${POINT}.ppm`]);
  expect(await readBootCheck(root, POINT)).toMatchObject({ state: 'timeout', screenshot: `${POINT}.ppm` });
  await clearBootCheck(root, POINT);
  expect(await fs.readdir(path.join(root, BOOTCHECKS_DIR))).toEqual([]);
  expect(await readBootCheck(root, POINT)).toBeNull();
  await clearBootCheck(root, POINT);
});

test('an encrypted repository keeps no guest output: no console lines, no screenshot', async () => {
  const shot = path.join(root, 'shot.png');
  await fs.writeFile(shot, Buffer.from('png bytes'));
  const stored = await writeBootCheck(root, record(), shot, true);
  expect(stored).toEqual(record({ matchedLine: null, consoleTail: [], screenshot: null }));
  expect(await fs.readdir(path.join(root, BOOTCHECKS_DIR))).toEqual([`${POINT}.json`]);
});

test('a name that is no point id is refused; a damaged record is REPO_CORRUPT', async () => {
  await expectCode(writeBootCheck(root, record({ pointId: '../x' }), null, false), 'INVALID_ARGUMENT');
  expect(await readBootCheck(root, '../x')).toBeNull();
  await fs.mkdir(path.join(root, BOOTCHECKS_DIR));
  await fs.writeFile(path.join(root, BOOTCHECKS_DIR, `${POINT}.json`), '{"pointId": "other"');
  await expectCode(readBootCheck(root, POINT), 'REPO_CORRUPT');
});

import { promises as fs, readFileSync } from 'fs';
import * as path from 'path';
import type { Frame, Page } from 'playwright-core';
import { buildFsDisk, type FsDisk } from '../helpers/fsDisk';
import { requireTools } from '../helpers/tools';
import type { Stack } from '../ui-harness/stack';
import { Portal, until } from './portal';

// Browse files… in the portal, driven in Chromium through the WebAdmin harness against the real
// service and the engine simulator: web01's first disk holds the four-filesystem fixture; from
// the VM's Backups tab a point is opened (a real libguestfs appliance), a folder reached by
// name and breadcrumbs, a file checked and downloaded, a search by glob made and its hit
// downloaded — the saved bytes compared with the fixture's; closing the modal closes the session.

requireTools('guestfish');

const sel = (b64: string): string => b64.replace(/[^A-Za-z0-9]/g, '_');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('Browse files in the portal', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let web01: string;
  let point: string;
  let disk: FsDisk;


  /** Clicks Download and returns the saved file's bytes and suggested name. */
  async function download(tab: Frame, name: string): Promise<{ name: string; bytes: Buffer }> {
    const [d] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), tab.click('#files-download')]);
    const file = path.join(portal.dir, `download-${name}`);
    await d.saveAs(file);
    return { name: d.suggestedFilename(), bytes: readFileSync(file) };
  }

  beforeAll(async () => {
    portal = await Portal.open('files', { minLockDays: 0 });
    ({ stack, page } = portal);
    disk = await buildFsDisk(await fs.mkdtemp(path.join(portal.dir, 'fixture-')));
    const web = stack.sim.vmByName('web01');
    web01 = web.id;
    await stack.sim.guestWrite(web01, web.disks[0]!.id, 0, await fs.readFile(disk.image));
    const started = await portal.api<{ job: { id: string } }>('POST', `/vms/${web01}/backups`, {});
    expect(started.status).toBe(202);
    const job = await portal.jobDone(started.body.job.id);
    expect(job.state).toBe('succeeded');
    point = job.result!.pointId;
    await portal.login(stack.sim.users.admin);
  }, 400_000);

  afterAll(async () => {
    await portal?.close('files-service.log');
  }, 120_000);

  it('opens a point, walks to a folder, downloads a checked file and a search hit byte-exact; closing ends the session', async () => {
    const tab = await portal.vmTab(web01);
    await tab.waitForSelector(`#point-files-${point}`, { timeout: 30_000 });
    await tab.click(`#point-files-${point}`);
    await tab.waitForSelector('#files-dialog');
    expect(await tab.textContent('#files-opening')).toMatch(/Opening the point… this takes about 20 s/);
    await tab.waitForSelector('#files-filesystems', { timeout: 400_000 });
    await portal.screenshot('files-filesystems');

    // the ext4 filesystem's root: awkward names shown escaped, one row each
    await tab.click('#files-fs-_dev_sda1 .files-fs-open');
    await tab.waitForSelector('#files-folder');
    const names = await tab.locator('#files-folder .files-name, #files-folder .files-folder').evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(n: string): string | null }).getAttribute('data-name')));
    expect(names).toEqual(expect.arrayContaining(['new\\nline.txt', 'bad\\xff\\xfeutf8.txt', 'café.txt', 'docs', 'name with spaces.txt']));

    // into docs/deeper by name, back to docs by the breadcrumb
    await tab.click('#files-folder .files-folder[data-name="docs"]');
    await tab.waitForSelector('#files-folder .files-folder[data-name="deeper"]');
    await tab.click('#files-folder .files-folder[data-name="deeper"]');
    await tab.waitForSelector('#files-folder .files-name[data-name="note.md"]');
    expect(await tab.locator('#files-breadcrumb .files-crumb').allTextContents()).toEqual(['/dev/sda1', 'docs', 'deeper']);
    await tab.click('#files-breadcrumb button.files-crumb:has-text("docs")');
    await tab.waitForSelector('#files-folder .files-name[data-name="big.bin"]');

    // one file checked: it downloads as it is
    await tab.check(`#files-select-${sel(b64('big.bin'))}`);
    expect(await tab.textContent('#files-selected-count')).toBe('1 selected');
    await portal.screenshot('files-folder');
    const big = await download(tab, 'big.bin');
    const want = disk.files.find((f) => f.path.toString() === '/docs/big.bin')!.data;
    expect(big.name).toBe('big.bin');
    expect(big.bytes.length).toBe(want.length);
    expect(big.bytes.equals(want)).toBe(true);
    await tab.uncheck(`#files-select-${sel(b64('big.bin'))}`);

    // a search across the point; its hit (on the vfat filesystem) checked and downloaded
    await tab.fill('#files-search', '*.bin');
    await tab.click('#files-search-button');
    await tab.waitForSelector('#files-search-summary');
    const found = await tab.locator('#files-found .files-found-path').allTextContents();
    expect(found).toEqual(expect.arrayContaining(['/docs/big.bin', '/DIR/inner.bin', '/sub/deep.bin', '/ntfs file.bin']));
    await tab.check(`#files-found-select-${sel('/dev/sda2' + b64('/DIR/inner.bin'))}`);
    await portal.screenshot('files-search');
    const inner = await download(tab, 'inner.bin');
    expect(inner.bytes.equals(disk.files.find((f) => f.filesystem === '/dev/sda2' && f.path.toString() === '/DIR/inner.bin')!.data)).toBe(true);

    // closing the modal closes the session (the appliance stops)
    await tab.click('#files-close');
    await tab.waitForSelector('#files-dialog', { state: 'detached' });
    await until('the session closed', async () => ((await portal.api('GET', `/points/${point}/files/session`)).status === 404 ? true : undefined), 30_000);
    await portal.noPluginFailures();
  }, 600_000);
});

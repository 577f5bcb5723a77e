import { promises as fs } from 'fs';
import type { BootCheckView, JobList } from '../../backend/src/api/contract';
import { BOOT_MARKER, bootableDisk, disposeBootableDisk } from '../helpers/bootableDisk';
import type { Stack } from '../ui-harness/stack';
import { Portal, until } from './portal';

// Test boot in the portal, driven in Chromium through the WebAdmin harness against the real
// service and the engine simulator: web01's first disk holds the bootable fixture; a point of it
// is test-booted from the VM's Backups tab (real QEMU under TCG), its row turns "Boot OK", and the
// state opens the boot check with the screenshot the service kept and the matched console line.

describe('Test boot in the portal', () => {
  let portal: Portal;
  let stack: Stack;
  let web01: string;
  let point: string;


  beforeAll(async () => {
    portal = await Portal.open('bootcheck', { minLockDays: 0 });
    ({ stack } = portal);
    const web = stack.sim.vmByName('web01');
    web01 = web.id;
    await stack.sim.guestWrite(web01, web.disks[0]!.id, 0, await fs.readFile(await bootableDisk()));
    const started = await portal.api<{ job: { id: string } }>('POST', `/vms/${web01}/backups`, {});
    expect(started.status).toBe(202);
    const job = await portal.jobDone(started.body.job.id);
    expect(job.state).toBe('succeeded');
    point = job.result!.pointId;
    await portal.login(stack.sim.users.admin);
  }, 400_000);

  afterAll(async () => {
    await portal?.close('bootcheck-service.log');
    await disposeBootableDisk();
  }, 120_000);

  it('Test boot on a point: the row turns Boot OK; the state opens the screenshot and the matched line', async () => {
    const tab = await portal.vmTab(web01);
    await tab.waitForSelector(`#point-boot-${point}[data-boot="none"]`, { timeout: 30_000 });
    expect(await tab.textContent(`#point-boot-${point}`)).toBe('not tested');
    await tab.click(`#point-testboot-${point}`);
    const job = await until('the boot check job of web01', async () => (await portal.api<JobList>('GET', `/jobs?vmId=${web01}&limit=5`)).body.jobs.find((j) => j.kind === 'bootcheck'), 30_000);
    expect((await portal.jobDone(job.id, 400_000)).result?.bootCheck?.state).toBe('ok');
    // the live `point` message reloads the table
    await tab.waitForSelector(`#point-boot-${point}[data-boot="ok"]`, { timeout: 30_000 });
    expect(await tab.textContent(`#point-boot-${point}`)).toBe('Boot OK');
    await until('the boot check toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((toast) => /^Boot check of web01: the restore point booted/.test(toast.message)), 30_000);

    await tab.click(`#point-boot-${point}`);
    await tab.waitForSelector('#bootcheck-dialog');
    await tab.waitForSelector('#bootcheck-screenshot', { timeout: 30_000 });
    // the image the service kept, drawn: a real screen, not a broken image
    const size = await until('the screenshot drawn', async () => {
      const s = await tab.$eval('#bootcheck-screenshot', (img) => {
        const i = img as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
        return { w: i.complete ? i.naturalWidth : 0, h: i.naturalHeight };
      });
      return s.w > 0 ? s : undefined;
    });
    const record = (await portal.api<BootCheckView>('GET', `/points/${point}/bootcheck`)).body;
    expect(record).toMatchObject({ state: 'ok', matchedLine: BOOT_MARKER, screenshot: true });
    expect(size.w).toBeGreaterThanOrEqual(320);
    expect(await tab.textContent('#bootcheck-matched')).toBe(BOOT_MARKER);
    expect(await tab.textContent('#bootcheck-state')).toMatch(/^Boot OK — the console showed a sign of life$/);
    await portal.screenshot('bootcheck-dialog');
    await tab.click('#bootcheck-close');
    await tab.waitForSelector('#bootcheck-dialog', { state: 'detached' });
  });
});

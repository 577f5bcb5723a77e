import type { Page } from 'playwright-core';
import type { Job, PointList } from '../../backend/src/api/contract';
import type { Stack } from '../ui-harness/stack';
import { PLACE, Portal, TAB, until } from './portal';

// The built plugin, unmodified, in the WebAdmin harness, against the real backup service and the
// engine simulator's real QEMU VMs, driven in Debian's Chromium. Selectors are the plugin's
// stable ids (backup-now-<vmId>, job-progress-<jobId>, point-row-<pointId> …) and the harness'
// WebAdmin ids (ActionPanel_<button id>, vm-select-<vmId>, detail-tab-<token> …).


describe('WebAdmin plugin end to end', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let vm: Record<'web01' | 'db01' | 'app01', string>;
  let app01Backup: Promise<Job>;

  beforeAll(async () => {
    portal = await Portal.open('plugin');
    ({ stack, page } = portal);
    vm = { web01: stack.sim.vmByName('web01').id, db01: stack.sim.vmByName('db01').id, app01: stack.sim.vmByName('app01').id };
    // app01 (down, not visible to user1) gets a point of its own, backed up by the admin meanwhile
    app01Backup = portal.api<{ job: Job }>('POST', `/vms/${vm.app01}/backups`, {}).then(async (r) => {
      if (r.status !== 202 && r.status !== 200) throw new Error(`backup of app01 refused: ${r.status} ${JSON.stringify(r.body)}`);
      return until(
        'the backup of app01',
        async () => {
          const j = (await portal.api<Job>('GET', `/jobs/${r.body.job.id}`)).body;
          return j.state === 'queued' || j.state === 'running' ? undefined : j;
        },
        240_000,
      );
    });
    app01Backup.catch(() => undefined); // awaited in its test
  }, 180_000);

  afterAll(async () => {
    await portal?.close('service.log');
  }, 120_000);

  it('logs in and shows the Backup place without taking over the landing page', async () => {
    await portal.login(stack.sim.users.admin);
    await until('the plugin in use', async () => (await page.evaluate(`window.__harness.state('${PLACE}')`)) === 'IN_USE', 30_000);
    expect(await portal.harness<string>('currentPlace()')).toBe('dashboard-main');
    // the quirk: our addPrimaryMenuPlace made Backup WebAdmin's default place; a URL naming no
    // place must still land where WebAdmin landed, not on Backup
    expect(await portal.harness<string>('defaultPlace()')).toBe(PLACE);
    await page.click('#harness-home');
    await until('the landing page again', async () => (await portal.harness<string>('currentPlace()')) === 'dashboard-main', 10_000);

    await page.click(`#nav-${PLACE}`);
    const place = page.frameLocator(`#place-frame-${PLACE}`);
    await place.locator('#dashboard').waitFor({ timeout: 30_000 });
    await place.locator('#repo-points').waitFor({ timeout: 30_000 });
    await expect(place.locator(`#next-full-${vm.web01}`).textContent()).resolves.toContain('web01');
    await portal.noPluginFailures();
  }, 120_000);

  it('backs up a selected VM: live progress to 100% without reload, the new point in its Backups tab', async () => {
    await page.click('#nav-vms');
    await page.check(`#vm-select-${vm.web01}`);
    expect(await page.isEnabled('#ActionPanel_OlvmBackupNow')).toBe(true);
    expect(await page.isEnabled('#ActionPanel_OlvmRestore')).toBe(true);
    await page.check(`#vm-select-${vm.db01}`);
    expect(await page.isEnabled('#ActionPanel_OlvmBackupNow')).toBe(true);
    expect(await page.isEnabled('#ActionPanel_OlvmRestore')).toBe(false); // exactly one VM
    await page.uncheck(`#vm-select-${vm.db01}`);

    await page.click(`#detail-tab-${TAB}`);
    const tab = await portal.frameOf(`vm-tab.html?vmId=${vm.web01}`);
    await tab.waitForSelector(`#vm-backups-${vm.web01}`, { timeout: 30_000 });
    await tab.waitForSelector('#vm-points-table', { timeout: 30_000 });
    await tab.evaluate('window.__notReloaded = true');
    const pointsBefore = (await portal.api<PointList>('GET', `/vms/${vm.web01}/points`)).body.points.length;

    // progress as the page shows it, sampled while the backup runs
    const seen: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const v = await tab.evaluate("(() => { const b = document.querySelector('#vm-last-job [role=progressbar]'); return b ? Number(b.getAttribute('aria-valuenow')) : null; })()").catch(() => null);
        if (typeof v === 'number') seen.push(v);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    await page.click('#ActionPanel_OlvmBackupNow');
    await until('the "started" toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((t) => t.message === 'Backup of web01 started.'), 30_000);
    const job = await until(
      'the job to succeed',
      async () => {
        const list = (await portal.api<{ jobs: Job[] }>('GET', `/jobs?vmId=${vm.web01}&limit=1`)).body.jobs;
        const j = list[0];
        return j && j.state !== 'queued' && j.state !== 'running' ? j : undefined;
      },
      180_000,
    );
    expect(job.state).toBe('succeeded');
    const bar = `#job-progress-${job.id} [role=progressbar]`;
    await tab.waitForSelector(bar, { timeout: 30_000 });
    await until('the tab to show 100%', async () => (await tab.getAttribute(bar, 'aria-valuenow')) === '100', 30_000);
    sampling = false;
    await sampler;
    // the sampler may have slept through the last render: read the bar once more now
    const last = await tab.evaluate("(() => { const b = document.querySelector('#vm-last-job [role=progressbar]'); return b ? Number(b.getAttribute('aria-valuenow')) : null; })()");
    if (typeof last === 'number') seen.push(last);
    expect(seen.at(-1)).toBe(100);
    expect(await tab.getAttribute(`#job-progress-${job.id}`, 'data-state')).toBe('succeeded');
    expect(await tab.evaluate('window.__notReloaded')).toBe(true); // same document: live, no reload

    const pointId = job.result?.pointId ?? '';
    await tab.waitForSelector(`#point-row-${pointId}`, { timeout: 30_000 });
    expect(await tab.locator('#vm-points-table tbody tr').count()).toBe(pointsBefore + 1);
    await until('the success toast', async () => (await portal.harness<Array<{ type: string; message: string }>>('toasts')).some((t) => t.type === 'success' && t.message.startsWith('Backup of web01 finished')), 30_000);
    await tab.waitForSelector(`#chain-${stack.sim.vmByName('web01').disks[0]?.id ?? ''}`);
    await portal.screenshot('vm-backups-tab');
    await portal.noPluginFailures();
  }, 300_000);

  it('opens Restore… on exactly one VM with the point’s disks, OVF summary and a plan', async () => {
    await page.click('#ActionPanel_OlvmRestore');
    await page.waitForSelector('#dialog-olvm-backup-restore');
    const dialog = await portal.frameOf(`restore.html?vmId=${vm.web01}`);
    await dialog.waitForSelector('#restore-disks tbody tr', { timeout: 30_000 });
    expect(await dialog.locator('#restore-disks tbody tr').count()).toBe(stack.sim.vmByName('web01').disks.filter((d) => !/backup=0/.test(d.description)).length);
    expect(await dialog.textContent('#restore-ovf-name')).toBe('web01');
    // the dialog plans the default restore (restore.e2e.test.ts drives it to the end)
    await dialog.waitForSelector('#restore-problems[data-state="ready"][data-ok="true"]', { timeout: 30_000 });
    expect(await dialog.getAttribute('#restore-submit', 'aria-disabled')).not.toBe('true');
    await portal.screenshot('restore-dialog-opened');
    await page.click('#dialog-olvm-backup-restore-button-0');
    await page.waitForSelector('#dialog-olvm-backup-restore', { state: 'detached' });
    await portal.noPluginFailures();
  }, 120_000);

  it('shows a user no points of a VM he has no rights on, and lets him not back it up', async () => {
    const app01Job = await app01Backup;
    expect(app01Job.state).toBe('succeeded');
    await page.click(`#nav-${PLACE}`);
    const adminPlace = page.frameLocator(`#place-frame-${PLACE}`);
    await adminPlace.getByRole('tab', { name: 'Restore points' }).click();
    await adminPlace.locator('#points-table tbody tr').first().waitFor({ timeout: 30_000 });
    await until('app01 among the admin\'s points', async () => ((await adminPlace.locator('#points-table').textContent()) ?? '').includes('app01'), 30_000);
    await portal.screenshot('backup-place-points-admin');
    await portal.logout();

    await portal.login(stack.sim.users.plain);
    await page.click('#nav-vms');
    await page.waitForSelector(`#vm-row-${vm.web01}`);
    expect(await page.locator(`#vm-row-${vm.app01}`).count()).toBe(0);
    await page.click(`#nav-${PLACE}`);
    const place = page.frameLocator(`#place-frame-${PLACE}`);
    await place.locator('#dashboard').waitFor({ timeout: 30_000 });
    await place.getByRole('tab', { name: 'Restore points' }).click();
    await place.locator('#points-table tbody tr').first().waitFor({ timeout: 30_000 });
    const pointsText = (await place.locator('#points-table').textContent()) ?? '';
    expect(pointsText).toContain('web01');
    expect(pointsText).not.toContain('app01');
    await place.getByRole('tab', { name: 'Virtual machines' }).click();
    await place.locator(`#vm-row-${vm.web01}`).waitFor();
    expect(await place.locator(`#vm-row-${vm.app01}`).count()).toBe(0);
    expect(await place.locator(`#backup-now-${vm.app01}`).count()).toBe(0);
    // the audit log is for backup admins: he is told so in a sentence, not shown a failure
    await place.getByRole('tab', { name: 'Audit' }).click();
    await place.locator('#audit-forbidden').waitFor({ timeout: 30_000 });
    expect(await place.locator('#audit-forbidden').textContent()).toContain('Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may read the audit log');
    expect(await place.locator('#audit-error').count()).toBe(0);
    expect(await place.locator('#audit-table').count()).toBe(0);
    await portal.screenshot('backup-place-audit-forbidden');

    // and the service itself refuses him, whatever a page would send
    const token = await page.evaluate<string>("JSON.parse(sessionStorage.getItem('harness-user')).ssoToken");
    expect([403, 404]).toContain((await portal.api('POST', `/vms/${vm.app01}/backups`, {}, token)).status);
    const points = await portal.api<PointList>('GET', `/vms/${vm.app01}/points`, undefined, token);
    expect(points.status === 404 || points.body.points.length === 0).toBe(true);
    expect((await portal.api('GET', '/audit', undefined, token)).status).toBe(403);
    await portal.noPluginFailures();
  }, 300_000);

  it('says clearly when the service is down and recovers by itself when it is back', async () => {
    const place = page.frameLocator(`#place-frame-${PLACE}`);
    await place.getByRole('tab', { name: 'Dashboard' }).click();
    await place.locator('#repo-points').waitFor();
    await portal.screenshot('backup-place-dashboard');

    await stack.service.stop();
    await place.locator('#live-status').waitFor({ timeout: 30_000 });
    // a page opened while it is down explains what is wrong
    await page.click('#nav-vms');
    await page.click(`#nav-${PLACE}`);
    const again = page.frameLocator(`#place-frame-${PLACE}`);
    await again.locator('#service-error').waitFor({ timeout: 30_000 });
    expect(await again.locator('#service-error').getAttribute('data-kind')).toBe('unreachable');
    expect(await again.locator('#service-error').textContent()).toContain('cannot be reached');
    await portal.screenshot('backup-place-service-down');

    await stack.service.start(); // same port, same data
    await again.locator('#service-error').waitFor({ state: 'detached', timeout: 60_000 });
    await again.locator('#live-status').waitFor({ state: 'detached', timeout: 60_000 });
    await again.locator('#repo-points').waitFor({ timeout: 30_000 });
    await portal.noPluginFailures();
  }, 180_000);
});

import { execFile } from 'child_process';
import { readFileSync } from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import type { Frame, FrameLocator, Page } from 'playwright-core';
import type { DeletedVmList, Job, PointDetail } from '../../backend/src/api/contract';
import { messagesFor, translator } from '../../ui-plugin/src/intl/messages';
import type { Stack } from '../ui-harness/stack';
import { PLACE, Portal, TAB, until } from './portal';

// Who may do what, in the portal: the built plugin in the WebAdmin harness against the real
// service and the engine simulator's QEMU VMs, in Debian's Chromium. viewer@internal sees every
// VM and holds no permit: every action is offered disabled, its reason (the missing permit) in a
// tooltip, and nothing starts. operator@internal (UserVmManager on web01; here also UserRole on
// db01, which he may see but not back up) backs web01 up from WebAdmin's VM list. Then web01 is deleted from the engine; backupadmin@internal (a backup admin
// by the service's configuration, holding no permit) sees it among the deleted VMs yet may not
// back anything up; and the admin brings it back from the Backup place's Deleted VMs tab under
// its original ids: same VM id and name, same disk ids, MACs, it starts, and its disks hold
// exactly the bytes of the restore point.

const CLI = path.resolve(__dirname, '../../backend/src/cli/main.js');
const run = promisify(execFile);

// the reasons as the plugin's catalog words them: what is checked is that each button names the
// right reason and VM, not the English text once more
const t = translator(messagesFor('en-US'));
const NO_BACKUP = t('deniedBackup', { vm: 'web01' });
const NO_VERIFY = t('deniedVerify', { vm: 'web01' });
const NO_DOWNLOAD = t('deniedDownload', { vm: 'web01' });

interface EngineVm {
  id: string;
  name: string;
  status: string;
}

describe('Permits in the portal, and a deleted VM brought back', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let web01: { id: string; name: string; diskIds: string[] };
  let db01: string;
  /** The admin's full backup of web01, and the operator's incremental after it. */
  let adminPoint: string;
  let operatorPoint: string;
  /** web01's NICs before it was deleted. */
  let originalNics: Array<{ name: string; mac: { address: string } }> = [];

  function place(): FrameLocator {
    return page.frameLocator(`#place-frame-${PLACE}`);
  }

  /** Logs in, waiting for the host page's first VM list (the access flags WebAdmin's buttons use). */
  async function loginAs(user: { name: string; password: string }): Promise<void> {
    const fromHostPage = (r: { request(): { frame(): { url(): string } } }): boolean => {
      try {
        return r.request().frame().url().includes('plugin.html');
      } catch {
        return false; // a request without a frame (a worker's) is not the host page's
      }
    };
    // whoever was logged in (a failed test may have left a dialog open): the harness forgets him
    await page.goto(stack.harness.url);
    await page.evaluate("sessionStorage.removeItem('harness-user')");
    const accessLoaded = page.waitForResponse((r) => r.url().endsWith('/api/v1/vms') && fromHostPage(r), { timeout: 60_000 });
    await portal.login(user);
    await accessLoaded;
  }

  /** The button is aria-disabled and, hovered, shows exactly `reason` in its tooltip. */
  async function disabledWith(frame: Frame | FrameLocator, id: string, reason: string): Promise<void> {
    const button = frame.locator(`#${id}`);
    await frame.locator(`#${id}[aria-disabled="true"]`).waitFor({ timeout: 30_000 });
    await button.scrollIntoViewIfNeeded();
    await button.hover();
    const tip = frame.locator(`#${id}-reason`);
    await tip.waitFor({ state: 'visible', timeout: 10_000 });
    expect((await tip.textContent())?.trim()).toBe(reason);
    await page.mouse.move(0, 0);
    await tip.waitFor({ state: 'hidden', timeout: 10_000 });
  }

  async function selectOnly(vmId: string): Promise<void> {
    await page.click('#nav-vms');
    await page.waitForSelector(`#vm-select-${vmId}`);
    // the harness draws the list again at each change: act through ids, not element handles
    const checked = await page.locator('#vm-list input[type=checkbox]:checked').evaluateAll((boxes: Array<{ id: string }>) => boxes.map((b) => b.id));
    for (const id of checked) if (id !== `vm-select-${vmId}`) await page.uncheck(`#${id}`);
    if (!(await page.isChecked(`#vm-select-${vmId}`))) await page.check(`#vm-select-${vmId}`);
  }

  beforeAll(async () => {
    // backupadmin@internal is a backup admin through his engine group (the engine names users
    // `name@internal-authz`, so a group is the simpler thing to configure)
    portal = await Portal.open('access', { backupAdmins: ['olvm-backup-admins'] });
    ({ stack, page } = portal);
    const vm = stack.sim.vmByName('web01');
    web01 = { id: vm.id, name: vm.name, diskIds: vm.disks.map((d) => d.id) };
    db01 = stack.sim.vmByName('db01').id;
    // the operator sees db01 too, without a backup permit on it (UserRole: viewing, start/stop)
    stack.sim.grant({ role: 'UserRole', to: 'operator@internal', on: { kind: 'vm', id: db01 } });
    // guest data of its own on each disk, so the bytes compared at the end say something
    for (const [i, diskId] of web01.diskIds.entries()) {
      await stack.sim.guestWrite(web01.id, diskId, (i + 1) * 1024 * 1024, Buffer.alloc(256 * 1024, 0x41 + i));
    }
    // the admin's point of web01 (the viewer's buttons act on it)
    const started = await portal.api<{ job: Job }>('POST', `/vms/${web01.id}/backups`, {});
    expect(started.status).toBe(202);
    const job = await portal.jobDone(started.body.job.id);
    expect([job.state, job.error]).toEqual(['succeeded', null]);
    adminPoint = job.result?.pointId ?? '';
  }, 400_000);

  afterAll(async () => {
    await portal?.close('access-service.log');
  }, 120_000);

  it('offers viewer@internal (no permit) every action disabled with the missing permit, and starts nothing', async () => {
    await loginAs(stack.sim.users.viewer);
    const jobsBefore = (await portal.api<{ jobs: Job[] }>('GET', `/jobs?vmId=${web01.id}`)).body.jobs.length;

    // WebAdmin's own Backup now: disabled, the reason in its title; Restore… still opens the points
    await selectOnly(web01.id);
    expect(await page.isEnabled('#ActionPanel_OlvmBackupNow')).toBe(false);
    await until('the reason on WebAdmin\'s button', async () => (await page.getAttribute('#ActionPanel_OlvmBackupNow', 'title')) === NO_BACKUP, 10_000);
    expect(await page.isEnabled('#ActionPanel_OlvmRestore')).toBe(true);

    // the VM's Backups tab: Backup now and Verify disabled with their reasons
    await page.click(`#detail-tab-${TAB}`);
    const tab = await portal.frameOf(`vm-tab.html?vmId=${web01.id}`);
    await tab.waitForSelector(`#point-row-${adminPoint}`, { timeout: 30_000 });
    await disabledWith(tab, `backup-now-${web01.id}`, NO_BACKUP);
    await disabledWith(tab, `point-verify-${adminPoint}`, NO_VERIFY);
    // a click anyway does nothing
    await tab.click(`#backup-now-${web01.id}`, { force: true });
    await tab.click(`#point-verify-${adminPoint}`, { force: true });
    await portal.screenshot('access-viewer-vm-tab');

    // Restore…: downloads and Restore disabled (no create_vm on any cluster: none is named), original ids are not his
    await selectOnly(web01.id);
    await page.click('#ActionPanel_OlvmRestore');
    const dialog = await portal.frameOf(`restore.html?vmId=${web01.id}`);
    await dialog.waitForSelector('#restore-disks tbody tr', { timeout: 30_000 });
    await dialog.waitForSelector('#restore-problems[data-state="ready"]', { timeout: 30_000 });
    const point = (await portal.api<PointDetail>('GET', `/points/${adminPoint}`)).body;
    for (const d of point.disks) await disabledWith(dialog, `restore-download-${d.device}-raw`, NO_DOWNLOAD);
    const denied = (await dialog.getAttribute('#restore-submit', 'data-disabled-reason')) ?? '';
    expect(denied).toBe(t('deniedCreateVm'));
    expect(await dialog.textContent('#restore-denied')).toContain(denied);
    await disabledWith(dialog, 'restore-submit', denied);
    expect(await dialog.isDisabled('#restore-as-original')).toBe(true);
    expect(await dialog.textContent('#restore-identity-group')).toContain(t('deniedOriginalIds'));
    await dialog.click('#restore-submit', { force: true });
    await portal.screenshot('access-viewer-restore');
    await page.click('#dialog-olvm-backup-restore-button-0');
    await page.waitForSelector('#dialog-olvm-backup-restore', { state: 'detached' });

    // the Backup place: repository verify and policies are not his; the audit log explains; no deleted VMs
    await page.click(`#nav-${PLACE}`);
    await place().locator('#repo-points').waitFor({ timeout: 30_000 });
    await disabledWith(place(), 'repository-verify', t('deniedVerifyRepository'));
    await place().getByRole('tab', { name: 'Policies' }).click();
    await disabledWith(place(), 'policy-create', t('deniedPolicyCreate'));
    await place().getByRole('tab', { name: 'Audit' }).click();
    expect(await place().locator('#audit-forbidden').textContent()).toContain(t('deniedAudit'));
    expect(await place().locator('#tab-deleted').count()).toBe(0);

    // nothing started: no job, no "started" toast
    await page.waitForTimeout(1000);
    expect((await portal.api<{ jobs: Job[] }>('GET', `/jobs?vmId=${web01.id}`)).body.jobs.length).toBe(jobsBefore);
    expect((await portal.harness<Array<{ message: string }>>('toasts')).filter((toast) => /started/.test(toast.message))).toEqual([]);
    // and the service refuses him whatever a page would send, naming the permit (audited)
    const token = await page.evaluate<string>("JSON.parse(sessionStorage.getItem('harness-user')).ssoToken");
    const refused = await portal.api<{ error: { code: string; message: string } }>('POST', `/vms/${web01.id}/backups`, {}, token);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('backup_disk on vm web01') });
    await portal.noPluginFailures();
    await portal.logout();
  }, 300_000);

  it('lets operator@internal back up web01 from WebAdmin\'s VM list, not db01, and write a policy of his VMs only', async () => {
    await loginAs(stack.sim.users.operator);
    await selectOnly(db01);
    expect(await page.isEnabled('#ActionPanel_OlvmBackupNow')).toBe(false);
    await until('the reason on WebAdmin\'s button', async () => (await page.getAttribute('#ActionPanel_OlvmBackupNow', 'title')) === t('deniedBackup', { vm: 'db01' }), 10_000);

    await selectOnly(web01.id);
    expect(await page.isEnabled('#ActionPanel_OlvmBackupNow')).toBe(true);
    await until('no reason on the enabled button', async () => (await page.getAttribute('#ActionPanel_OlvmBackupNow', 'title')) === null, 10_000);
    await page.click('#ActionPanel_OlvmBackupNow');
    await until('the "started" toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((toast) => toast.message === 'Backup of web01 started.'), 30_000);
    const job = await until('the operator\'s job', async () => (await portal.api<{ jobs: Job[] }>('GET', `/jobs?vmId=${web01.id}&limit=1`)).body.jobs.find((j) => j.requestedBy.name.startsWith('operator@internal')), 30_000);
    const done = await portal.jobDone(job.id);
    expect([done.state, done.error]).toEqual(['succeeded', null]);
    operatorPoint = done.result?.pointId ?? '';
    expect(operatorPoint).not.toBe('');

    // his policy: chosen VMs only, every point kept, no lock; db01 not his to add
    await page.click(`#nav-${PLACE}`);
    await place().locator('#repo-points').waitFor({ timeout: 30_000 });
    await place().getByRole('tab', { name: 'Policies' }).click();
    await place().locator('#policy-create').click();
    await place().locator('#policy-dialog').waitFor();
    expect(await place().locator('#policy-selection-vms').isChecked()).toBe(true);
    expect(await place().locator('#policy-selection-tag').isDisabled()).toBe(true);
    expect(await place().locator('#policy-selection-search').isDisabled()).toBe(true);
    expect(await place().locator('#policy-selection-reason').textContent()).toContain(t('deniedPolicySelection'));
    for (const f of ['keeplast', 'daily', 'weekly', 'monthly', 'yearly', 'lockdays']) {
      expect(await place().locator(`#policy-${f}`).isDisabled()).toBe(true);
      expect(await place().locator(`#policy-${f}`).inputValue()).toBe('0');
    }
    expect(await place().locator('#policy-retention-reason').textContent()).toContain(t('deniedPolicyRetention'));
    expect(await place().locator('#policy-lockdays-reason').textContent()).toContain(t('deniedPolicyLock'));
    expect(await place().locator(`#policy-vm-${db01}`).isDisabled()).toBe(true);
    expect(await place().locator(`#policy-vm-${web01.id}`).isDisabled()).toBe(false);
    await portal.screenshot('access-operator-policy');
    await place().locator('#policy-cancel').click();
    await portal.noPluginFailures();
    await portal.logout();
  }, 400_000);

  it('shows a backup admin by configuration (no permit) the deleted web01 and the audit log with the viewer\'s refusal, and no backup', async () => {
    originalNics = (await portal.engine<{ nic?: Array<{ name: string; mac: { address: string } }> }>('GET', `/vms/${web01.id}/nics`)).body.nic ?? [];
    expect(originalNics.length).toBeGreaterThan(0);
    await stack.sim.deleteVm(web01.id);
    expect((await portal.engine('GET', `/vms/${web01.id}`)).status).toBe(404);
    const listed = await until('web01 among the deleted VMs', async () => (await portal.api<DeletedVmList>('GET', '/deleted-vms')).body.vms.find((v) => v.id === web01.id), 60_000);
    expect(listed).toMatchObject({ name: 'web01', pointCount: 2, lastPoint: { id: operatorPoint } });

    await loginAs(stack.sim.users.backupadmin);
    await page.click(`#nav-${PLACE}`);
    await place().locator('#repo-points').waitFor({ timeout: 30_000 });
    // what concerns every VM is his: the repository verify is offered
    expect(await place().locator('#repository-verify').getAttribute('aria-disabled')).not.toBe('true');
    await place().getByRole('tab', { name: 'Deleted VMs' }).click();
    await place().locator(`#deleted-vm-row-${web01.id}`).waitFor({ timeout: 30_000 });
    await place().getByRole('tab', { name: 'Audit' }).click();
    const row = place().locator('#audit-table [data-kind="access-denied"]').first();
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toBe('Action refused (missing permit)');
    expect(await place().locator('#audit-table').textContent()).toContain('viewer@internal');
    // but a VM's backup takes the VM's permit, which he does not hold
    await place().getByRole('tab', { name: 'Virtual machines' }).click();
    await disabledWith(place(), `backup-now-${db01}`, t('deniedBackup', { vm: 'db01' }));
    await portal.noPluginFailures();
    await portal.logout();
  }, 180_000);

  it('brings web01 back from the Deleted VMs tab under its original ids, bytes as in the point', async () => {
    await loginAs(stack.sim.users.admin);
    await page.click(`#nav-${PLACE}`);
    await place().locator('#repo-points').waitFor({ timeout: 30_000 });
    await place().getByRole('tab', { name: 'Deleted VMs' }).click();
    await place().locator(`#deleted-vm-row-${web01.id}`).waitFor({ timeout: 30_000 });
    expect(await place().locator(`#deleted-vm-points-${web01.id}`).textContent()).toBe('2');
    expect(await place().locator(`#deleted-vm-ovf-${web01.id}`).textContent()).toContain('2 disk(s)');
    await portal.screenshot('access-deleted-vms');
    await place().locator(`#deleted-restore-${web01.id}`).click();

    await page.waitForSelector('#dialog-olvm-backup-restore');
    const dialog = await portal.frameOf('deleted=1');
    await dialog.waitForSelector('#restore-disks tbody tr', { timeout: 30_000 });
    expect(await dialog.inputValue('#restore-point')).toBe(operatorPoint);
    // under its original ids by default here: its name, its ids, its MACs
    expect(await dialog.isChecked('#restore-as-original')).toBe(true);
    expect(await dialog.inputValue('#restore-vm-name')).toBe('web01');
    expect(await dialog.isChecked('#restore-regenerate-macs')).toBe(false);
    // the plan is there before anything is written: nothing in the engine uses those ids now
    await dialog.waitForSelector('#restore-problems[data-state="ready"][data-ok="true"]', { timeout: 30_000 });
    expect(await dialog.getAttribute('#restore-submit', 'aria-disabled')).not.toBe('true');
    expect(await dialog.locator('#restore-denied').count()).toBe(0);
    await portal.screenshot('access-deleted-restore-dialog');
    await dialog.click('#restore-submit');
    await dialog.waitForSelector('#restore-progress', { timeout: 30_000 });
    const jobId = (await dialog.getAttribute('#restore-progress', 'data-job')) ?? '';
    await dialog.waitForSelector('#restore-progress[data-state="succeeded"]', { timeout: 300_000 });
    const job = (await portal.api<Job>('GET', `/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ kind: 'restore', state: 'succeeded', restore: { pointId: operatorPoint, mode: 'vm' } });
    expect(job.result?.restored?.vmId).toBe(web01.id);
    expect(job.result?.restored?.disks.every((d) => d.verified)).toBe(true);
    await portal.screenshot('access-deleted-restored');

    // in the engine: web01 under its own id and name, with its own disk ids and MACs
    const back = stack.sim.vmById(web01.id);
    expect(back.name).toBe('web01');
    expect(back.disks.map((d) => d.id).sort()).toEqual([...web01.diskIds].sort());
    const nics = (await portal.engine<{ nic?: Array<{ name: string; mac: { address: string } }> }>('GET', `/vms/${web01.id}/nics`)).body.nic ?? [];
    expect(nics.map((n) => [n.name, n.mac.address])).toEqual(originalNics.map((n) => [n.name, n.mac.address]));
    expect((await portal.api<DeletedVmList>('GET', '/deleted-vms')).body.vms.some((v) => v.id === web01.id)).toBe(false);

    // it starts
    expect((await portal.engine('POST', `/vms/${web01.id}/start`, {})).status).toBeLessThan(300);
    await until('web01 up', async () => (await portal.engine<EngineVm>('GET', `/vms/${web01.id}`)).body.status === 'up', 60_000);

    // and each disk holds exactly the point's bytes, as the repository restores them to a file
    const point = (await portal.api<PointDetail>('GET', `/points/${operatorPoint}`)).body;
    expect(point.disks.map((d) => d.diskId).sort()).toEqual([...web01.diskIds].sort());
    for (const d of point.disks) {
      const out = path.join(portal.dir, `${d.device}.img`);
      await run(process.execPath, [CLI, 'restore', '--repo', path.join(stack.serviceDir, 'repository'), '--point', operatorPoint, '--disk', d.device, '--out', out, '--format', 'raw']);
      const expected = readFileSync(out);
      const actual = await stack.sim.diskBytes(web01.id, d.diskId ?? '');
      expect(actual.length).toBe(expected.length);
      expect(actual.equals(expected)).toBe(true);
    }
    // the guest data written before the backups is there
    const first = await stack.sim.diskBytes(web01.id, web01.diskIds[0] ?? '');
    expect(first.subarray(1024 * 1024, 1024 * 1024 + 256 * 1024).equals(Buffer.alloc(256 * 1024, 0x41))).toBe(true);
    await portal.noPluginFailures();
  }, 500_000);
});

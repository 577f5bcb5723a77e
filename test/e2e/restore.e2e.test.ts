import { readFileSync, statSync } from 'fs';
import * as path from 'path';
import type { Frame, Page } from 'playwright-core';
import type { Job, PointDetail, PointList, RestorePlanView } from '../../backend/src/api/contract';
import type { Stack } from '../ui-harness/stack';
import { PLACE, Portal, TAB, until } from './portal';

// The Restore… dialog end to end: the built plugin in the WebAdmin harness, the real backup
// service, the engine simulator's QEMU VMs, Debian's Chromium. web01 is backed up from its
// Backups tab, restored from the VM list's Restore… action under a new name with one disk on
// another storage domain, and the result is checked in the engine. Selectors are the dialog's
// stable ids (restore-vm-name, restore-disk-sd-<device>, restore-submit, restore-problems …).

const NEW_NAME = 'web01-e2e';

interface EngineDisk {
  id: string;
  alias: string;
  provisioned_size: string;
  storage_domains: { storage_domain: Array<{ id: string }> };
}

describe('Restore dialog end to end', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let dialog: Frame;
  let web01: string;
  let point: PointDetail;
  let data2: { id: string; name: string };
  /** the full backup's point, older than `point` */
  let olderPoint: string;
  /** device → engine alias of web01's disks in the point */
  let devices: string[];

  /** The plan for the form as it is now has arrived (data-state=ready) and says ok or not. */
  async function planSettled(ok: boolean): Promise<void> {
    await dialog.waitForSelector(`#restore-problems[data-state="ready"][data-ok="${String(ok)}"]`, { timeout: 30_000 });
  }

  /** Restore is aria-disabled (PatternFly keeps it focusable, with its tooltip-free reason above). */
  async function submitBlocked(): Promise<boolean> {
    return (await dialog.getAttribute('#restore-submit', 'aria-disabled')) === 'true';
  }

  async function codes(): Promise<string[]> {
    const items = dialog.locator('#restore-problems [data-code]');
    const out: string[] = [];
    for (let i = 0; i < (await items.count()); i++) out.push((await items.nth(i).getAttribute('data-code')) ?? '');
    return out;
  }

  beforeAll(async () => {
    portal = await Portal.open('restore');
    ({ stack, page } = portal);
    web01 = stack.sim.vmByName('web01').id;
  }, 180_000);

  afterAll(async () => {
    await portal?.close('restore-service.log');
  }, 120_000);

  it('backs up web01 from its Backups tab, full then incremental', async () => {
    await portal.login(stack.sim.users.admin);
    await until('the plugin in use', async () => (await page.evaluate(`window.__harness.state('${PLACE}')`)) === 'IN_USE', 30_000);

    await page.click('#nav-vms');
    await page.check(`#vm-select-${web01}`);
    await page.click(`#detail-tab-${TAB}`);
    const tab = await portal.frameOf(`vm-tab.html?vmId=${web01}`);
    const jobs: Job[] = [];
    for (let i = 0; i < 2; i++) {
      await tab.waitForSelector(`#backup-now-${web01}:not([disabled])`);
      await tab.click(`#backup-now-${web01}`);
      // the dialog's defaults: the service's method, automatic consistency
      await tab.click('#backup-now-start');
      const started = await until(
        'the backup of web01',
        async () => {
          const j = (await portal.api<{ jobs: Job[] }>('GET', `/jobs?vmId=${web01}&limit=1`)).body.jobs[0];
          return j && !jobs.some((x) => x.id === j.id) ? j : undefined;
        },
        30_000,
      );
      const job = await portal.jobDone(started.id, 180_000);
      expect([job.state, job.error]).toEqual(['succeeded', null]);
      jobs.push(job);
    }
    expect(jobs[1]?.result?.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    const points = (await portal.api<PointList>('GET', `/vms/${web01}/points`)).body.points;
    expect(points.map((p) => p.id).sort()).toEqual(jobs.map((j) => j.result?.pointId).sort());
    olderPoint = jobs[0]?.result?.pointId ?? '';
    await tab.waitForSelector(`#point-restore-${olderPoint}`, { timeout: 30_000 });
    // the newest point (the incremental) is the one the VM list's action restores
    const job = jobs[1]!;
    point = (await portal.api<PointDetail>('GET', `/points/${job.result?.pointId ?? ''}`)).body;
    devices = point.disks.map((d) => d.device);
    expect(devices).toHaveLength(2);
    // the domains the dialog will offer, as the service plans them
    const plan = (await portal.api<RestorePlanView>('POST', `/points/${point.id}/restore/plan`, { mode: 'vm' })).body;
    const other = plan.targets.storageDomains.find((s) => s.usable && s.id !== plan.disks[1]?.storageDomainId);
    if (!other) throw new Error(`no second usable storage domain in ${JSON.stringify(plan.targets.storageDomains)}`);
    data2 = other;
  }, 300_000);

  it('opens Restore… from the VM action on the newest point, with the defaults planned', async () => {
    await page.click('#nav-vms');
    await page.waitForSelector(`#vm-select-${web01}`);
    if (!(await page.isChecked(`#vm-select-${web01}`))) await page.check(`#vm-select-${web01}`);
    await page.click('#ActionPanel_OlvmRestore');
    await page.waitForSelector('#dialog-olvm-backup-restore');
    dialog = await portal.frameOf(`restore.html?vmId=${web01}`);
    await dialog.waitForSelector('#restore-disks tbody tr', { timeout: 30_000 });
    await planSettled(true);
    expect(await dialog.inputValue('#restore-point')).toBe(point.id);
    expect(await dialog.inputValue('#restore-vm-name')).toBe('web01-restored');
    expect(await dialog.isChecked('#restore-from-ovf')).toBe(true);
    expect(await dialog.isChecked('#restore-as-new')).toBe(true);
    expect(await dialog.isChecked('#restore-as-original')).toBe(false);
    expect(await dialog.isChecked('#restore-regenerate-macs')).toBe(true);
    expect(await dialog.isChecked('#restore-use-proxy')).toBe(false);
    expect(await dialog.textContent('#restore-ovf-name')).toBe('web01');
    expect(await dialog.locator('#restore-disks tbody tr').count()).toBe(2);
    for (const d of devices) {
      expect(await dialog.isChecked(`#restore-disk-include-${d}`)).toBe(true);
      // the planned name follows the VM name until one is typed
      expect(await dialog.getAttribute(`#restore-disk-name-${d}`, 'placeholder')).toMatch(/^web01-restored_Disk\d$/);
      expect(await dialog.inputValue(`#restore-disk-sd-${d}`)).not.toBe('');
    }
    expect(await dialog.textContent(`#restore-disk-sd-${devices[1]}`)).toMatch(/free/);
    expect(await submitBlocked()).toBe(false);
    expect(await dialog.textContent('#restore-plan-ready')).toContain('web01-restored');
    await portal.noPluginFailures();
  }, 120_000);

  it('shows a name conflict while an existing VM name is typed, and lets it go again; a MAC conflict likewise', async () => {
    await dialog.fill('#restore-vm-name', 'db01');
    await planSettled(false);
    expect(await codes()).toContain('VM_NAME_EXISTS');
    expect(await submitBlocked()).toBe(true);
    expect(await dialog.getAttribute('#restore-vm-name', 'aria-invalid')).toBe('true');
    expect(await dialog.textContent('#restore-vm-name-problems')).toContain('db01');
    await portal.screenshot('restore-dialog-conflict');

    // a name the engine would refuse is caught before asking
    await dialog.fill('#restore-vm-name', 'web 01');
    await dialog.waitForSelector('#restore-problems[data-state="invalid"] [data-code="VM_NAME_INVALID"]');
    expect(await submitBlocked()).toBe(true);

    await dialog.fill('#restore-vm-name', NEW_NAME);
    await planSettled(true);
    expect(await codes()).not.toContain('VM_NAME_EXISTS');
    expect(await dialog.getAttribute(`#restore-disk-name-${devices[0]}`, 'placeholder')).toBe(`${NEW_NAME}_Disk1`);
    expect(await submitBlocked()).toBe(false);

    // keeping the MACs while web01 still has them: refused, said at the checkbox
    await dialog.uncheck('#restore-regenerate-macs');
    await planSettled(false);
    expect(await codes()).toContain('MAC_IN_USE');
    expect(await dialog.textContent('#restore-regenerate-macs-problems')).toContain('web01');
    expect(await submitBlocked()).toBe(true);
    await dialog.check('#restore-regenerate-macs');
    await planSettled(true);
    expect(await codes()).not.toContain('MAC_IN_USE');
  }, 120_000);

  it('takes a disk name and another storage domain for one disk, and plans them', async () => {
    const [first, second] = devices as [string, string];
    await dialog.fill(`#restore-disk-name-${first}`, `${NEW_NAME}-boot`);
    await dialog.selectOption(`#restore-disk-sd-${second}`, data2.id);
    await planSettled(true);
    expect(await dialog.inputValue(`#restore-disk-sd-${second}`)).toBe(data2.id);
    expect(await dialog.inputValue(`#restore-disk-name-${first}`)).toBe(`${NEW_NAME}-boot`);
    // what the dialog sends is what the service plans
    const plan = (
      await portal.api<RestorePlanView>('POST', `/points/${point.id}/restore/plan`, {
        mode: 'vm',
        vmName: NEW_NAME,
        disks: [
          { device: first, include: true, name: `${NEW_NAME}-boot` },
          { device: second, include: true, storageDomainId: data2.id },
        ],
      })
    ).body;
    expect(plan.disks.map((d) => [d.name, d.storageDomainName])).toEqual([
      [`${NEW_NAME}-boot`, expect.any(String)],
      [`${NEW_NAME}_Disk2`, data2.name],
    ]);
    await dialog.locator('#restore-submit').scrollIntoViewIfNeeded();
    await portal.screenshot('restore-dialog');
  }, 120_000);

  it('restores: live progress to done in the dialog, a toast naming the new VM, the VM and its disks in the engine', async () => {
    const seen: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const v = await dialog.evaluate("(() => { const b = document.querySelector('#restore-progress [role=progressbar]'); return b ? Number(b.getAttribute('aria-valuenow')) : null; })()").catch(() => null);
        if (typeof v === 'number') seen.push(v);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await dialog.click('#restore-submit');
    await dialog.waitForSelector('#restore-progress', { timeout: 30_000 });
    const jobId = (await dialog.getAttribute('#restore-progress', 'data-job')) ?? '';
    await until('the started toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((t) => t.message === 'Restore of web01 started.'), 30_000);
    // while it runs, the form is locked
    await dialog.waitForSelector('#restore-progress[data-state="succeeded"]', { timeout: 240_000 });
    sampling = false;
    await sampler;
    // the sampler may have slept through the last render: read the bar once more now
    const last = await dialog.evaluate("(() => { const b = document.querySelector('#restore-progress [role=progressbar]'); return b ? Number(b.getAttribute('aria-valuenow')) : null; })()");
    if (typeof last === 'number') seen.push(last);
    process.stdout.write(`restore progress seen in the dialog: ${JSON.stringify([...new Set(seen)])}\n`);
    expect(seen.at(-1)).toBe(100);
    expect(seen.every((v, i) => i === 0 || v >= (seen[i - 1] ?? 0))).toBe(true);
    expect(await dialog.getAttribute(`#job-progress-${jobId}`, 'data-state')).toBe('succeeded');
    expect(await dialog.getAttribute('#restore-result', 'data-vm-name')).toBe(NEW_NAME);
    expect(await dialog.textContent('#restore-result')).toContain(`${NEW_NAME}-boot`);

    const job = (await portal.api<Job>('GET', `/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ kind: 'restore', state: 'succeeded', restore: { pointId: point.id, mode: 'vm', target: NEW_NAME } });
    expect(job.result?.restored?.disks.every((d) => d.verified)).toBe(true);
    const toast = await until(
      'the success toast',
      async () => (await portal.harness<Array<{ type: string; message: string }>>('toasts')).find((t) => t.type === 'success' && t.message.startsWith('Restore of web01 finished')),
      30_000,
    );
    expect(toast.message).toContain(`VM ${NEW_NAME} created`);
    expect(toast.message).toContain(`${NEW_NAME}-boot`);

    // the engine: a new VM, down, described, with the disks named and placed as chosen
    const found = await portal.engine<{ vm?: Array<{ id: string; name: string; status: string; description: string }> }>('GET', `/vms?search=${encodeURIComponent(`name=${NEW_NAME}`)}`);
    expect(found.status).toBe(200);
    const vms = found.body.vm ?? [];
    expect(vms).toHaveLength(1);
    const vm = vms[0]!;
    expect(vm.id).toBe(job.result?.restored?.vmId);
    expect(vm.id).not.toBe(web01);
    expect(vm.status).toBe('down');
    expect(vm.description).toMatch(/^Restored by olvm-backup from web01 at /);
    const disks = await Promise.all(
      (job.result?.restored?.disks ?? []).map(async (d) => {
        const r = await portal.engine<EngineDisk>('GET', `/disks/${d.diskId}`);
        expect(r.status).toBe(200);
        return r.body;
      }),
    );
    const byAlias = new Map(disks.map((d) => [d.alias, d]));
    expect([...byAlias.keys()].sort()).toEqual([`${NEW_NAME}-boot`, `${NEW_NAME}_Disk2`]);
    expect(byAlias.get(`${NEW_NAME}_Disk2`)?.storage_domains.storage_domain[0]?.id).toBe(data2.id);
    expect(byAlias.get(`${NEW_NAME}-boot`)?.storage_domains.storage_domain[0]?.id).not.toBe(data2.id);
    const sim = stack.sim.vmByName(NEW_NAME);
    expect(sim.disks.map((d) => d.provisionedSize).sort()).toEqual(point.disks.map((d) => d.virtualSize).sort());

    // the engine has changed: planned again, the name is taken now and Restore is blocked
    await planSettled(false);
    expect(await codes()).toContain('VM_NAME_EXISTS');
    expect(await submitBlocked()).toBe(true);
    await dialog.locator('#restore-progress').scrollIntoViewIfNeeded();
    await portal.screenshot('restore-dialog-done');
    await portal.noPluginFailures();
  }, 300_000);

  it('downloads a disk image of the point, raw and qcow2', async () => {
    const disk = point.disks[0]!;
    const [raw] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), dialog.click(`#restore-download-${disk.device}-raw`)]);
    expect(raw.suggestedFilename()).toMatch(/\.img$/);
    const rawFile = path.join(portal.dir, 'download.img');
    await raw.saveAs(rawFile);
    expect(statSync(rawFile).size).toBe(disk.virtualSize);
    await dialog.waitForSelector(`#restore-download-link-${disk.device}`);

    const [qcow2] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), dialog.click(`#restore-download-${disk.device}-qcow2`)]);
    expect(qcow2.suggestedFilename()).toMatch(/\.qcow2$/);
    const qFile = path.join(portal.dir, 'download.qcow2');
    await qcow2.saveAs(qFile);
    expect(readFileSync(qFile).subarray(0, 4).toString('latin1')).toBe('QFI\xfb');
    // the dialog is still there (the download did not navigate it away)
    expect(await dialog.isVisible('#restore-submit')).toBe(true);
    await portal.noPluginFailures();
  }, 240_000);

  it('leads to the new VM in WebAdmin\'s VM list', async () => {
    await dialog.click('#restore-show-vm');
    await page.waitForSelector('#dialog-olvm-backup-restore', { state: 'detached' });
    expect(await portal.harness<string>('currentPlace()')).toBe('vms');
    expect(await portal.harness<string>('search')).toBe(`Vms: name = ${NEW_NAME}`);
    await portal.noPluginFailures();
  }, 60_000);

  it('opens Restore… on the point chosen in the Backups tab, and plans a disk-only restore', async () => {
    await page.click('#nav-vms');
    await page.waitForSelector(`#vm-select-${web01}`);
    if (!(await page.isChecked(`#vm-select-${web01}`))) await page.check(`#vm-select-${web01}`);
    await page.click(`#detail-tab-${TAB}`);
    const tab = await portal.frameOf(`vm-tab.html?vmId=${web01}`);
    await tab.click(`#point-restore-${olderPoint}`);
    await page.waitForSelector('#dialog-olvm-backup-restore');
    dialog = await portal.frameOf(`pointId=${olderPoint}`);
    await dialog.waitForSelector('#restore-disks tbody tr', { timeout: 30_000 });
    await planSettled(true);
    expect(await dialog.inputValue('#restore-point')).toBe(olderPoint);
    expect(await dialog.inputValue('#restore-vm-name')).toBe('web01-restored');
    // disks only: no VM fields, an optional VM to attach the disks to, planned as such
    await dialog.click('#restore-from-ovf-label'); // the switch's visible text, as a user clicks it
    expect(await dialog.isChecked('#restore-from-ovf')).toBe(false);
    await dialog.waitForSelector('#restore-vm-name', { state: 'detached' });
    await dialog.selectOption('#restore-attach-vm', stack.sim.vmByName('db01').id);
    await planSettled(true);
    expect(await dialog.textContent('#restore-plan-ready')).toContain('attached to db01');
    expect(await dialog.getAttribute(`#restore-disk-name-${devices[0]}`, 'placeholder')).toBe('web01-restored_Disk1');
    await page.click('#dialog-olvm-backup-restore-button-0');
    await page.waitForSelector('#dialog-olvm-backup-restore', { state: 'detached' });
    await portal.noPluginFailures();
  }, 60_000);
});

import type { FrameLocator, Page, Request } from 'playwright-core';
import type { JobDetail, JobList, PolicyDetail, PolicyList, VmList } from '../../backend/src/api/contract';
import type { Stack } from '../ui-harness/stack';
import { PLACE, Portal, until } from './portal';

// The backup method and consistency in the portal, driven in Chromium through the WebAdmin
// harness against the real service and the engine simulator: Backup now's dialog and the policy
// form send what was chosen, the job's log and the policy say so, the VM tab names the method
// its next backup will use, and chain health shows the raw disk of web01 (`backup: none`) with the fix for the engine method.

describe('Backup method and consistency in the portal', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let web01: string;
  let policyId = '';

  function place(): FrameLocator {
    return page.frameLocator(`#place-frame-${PLACE}`);
  }

  /** The bodies of the POSTs the page sends to `pathEnd` while `fn` runs. */
  async function posted(pathEnd: RegExp, fn: () => Promise<void>): Promise<unknown[]> {
    const bodies: unknown[] = [];
    const onRequest = (r: Request): void => {
      if (r.method() === 'POST' && pathEnd.test(new URL(r.url()).pathname)) bodies.push(r.postDataJSON());
    };
    page.on('request', onRequest);
    try {
      await fn();
    } finally {
      page.off('request', onRequest);
    }
    return bodies;
  }


  beforeAll(async () => {
    portal = await Portal.open('method', { minLockDays: 0 });
    ({ stack, page } = portal);
    web01 = stack.sim.vmByName('web01').id;
    await portal.login(stack.sim.users.admin);
    await until('the plugin in use', async () => (await page.evaluate(`window.__harness.state('${PLACE}')`)) === 'IN_USE', 30_000);
  }, 180_000);

  afterAll(async () => {
    await portal?.close('method-service.log');
  }, 120_000);

  it('Backup now: the dialog sends the chosen method and consistency, and the job says what it was asked', async () => {
    const tab = await portal.vmTab(web01);
    await tab.waitForSelector(`#backup-now-${web01}:not([disabled])`, { timeout: 30_000 });
    await tab.click(`#backup-now-${web01}`);
    await tab.waitForSelector('#backup-now-dialog');
    // the options and their texts
    expect(await tab.locator('#backup-now-method option').allTextContents()).toEqual(["The service's default", 'Automatic', 'QEMU monitor on the host', 'Engine backup API']);
    expect(await tab.locator('#backup-now-consistency option').allTextContents()).toEqual(['Automatic', 'Require filesystem-consistent', 'Crash-consistent']);
    await tab.selectOption('#backup-now-method', 'engine');
    await tab.selectOption('#backup-now-consistency', 'filesystem');
    await portal.screenshot('backup-now-dialog');
    const bodies = await posted(/\/api\/v1\/vms\/[^/]+\/backups$/, async () => {
      await tab.click('#backup-now-start');
      await tab.waitForSelector('#backup-now-dialog', { state: 'detached', timeout: 30_000 });
    });
    expect(bodies).toEqual([{ method: 'engine', consistency: 'filesystem' }]);
    const job = await until('the backup job of web01', async () => (await portal.api<JobList>('GET', `/jobs?vmId=${web01}&limit=1`)).body.jobs[0], 30_000);
    const detail = (await portal.api<JobDetail>('GET', `/jobs/${job.id}`)).body;
    expect(detail.log[0]?.message).toMatch(/^backup of vm web01 \(method engine, consistency filesystem\) queued by admin@internal/);
    // whatever its outcome (the engine method is another branch's), it ends before the next test
    await portal.jobDone(job.id, 240_000);

    // Cancel sends nothing
    await tab.click(`#backup-now-${web01}`);
    await tab.waitForSelector('#backup-now-dialog');
    const none = await posted(/\/backups$/, async () => {
      await tab.click('#backup-now-cancel');
      await tab.waitForSelector('#backup-now-dialog', { state: 'detached' });
    });
    expect(none).toEqual([]);
    await page.uncheck(`#vm-select-${web01}`);
    await portal.noPluginFailures();
  }, 300_000);

  it('a policy: the form sends its method and consistency, the saved policy keeps them and the form shows them again', async () => {
    await page.click(`#nav-${PLACE}`);
    await place().locator('#dashboard').waitFor({ timeout: 30_000 });
    await place().getByRole('tab', { name: 'Policies' }).click();
    await place().locator('#policy-create').click();
    await place().locator('#policy-dialog').waitFor();
    await place().locator('#policy-name').fill('by-engine');
    await place().locator('#policy-schedule').fill('0 3 1 1 *');
    await place().locator('#policy-selection-vms').check();
    await place().locator(`#policy-vm-${web01}`).check();
    await place().locator('#policy-method').selectOption('engine');
    await place().locator('#policy-consistency').selectOption('filesystem');
    const bodies = await posted(/\/api\/v1\/policies$/, async () => {
      await place().locator('#policy-save').click();
      await place().locator('#policy-next-runs-box[data-saved="true"]').waitFor({ timeout: 30_000 });
    });
    expect(bodies).toEqual([expect.objectContaining({ name: 'by-engine', method: 'engine', consistency: 'filesystem', selection: { vmIds: [web01] } })]);
    policyId = (await portal.api<PolicyList>('GET', '/policies')).body.policies.find((p) => p.name === 'by-engine')?.id ?? '';
    expect((await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body).toMatchObject({ method: 'engine', consistency: 'filesystem' });
    await portal.screenshot('policy-method');
    await place().locator('#policy-cancel').click();
    await place().locator('#policy-dialog').waitFor({ state: 'detached' });

    await place().locator(`#policy-edit-${policyId}`).click();
    await place().locator('#policy-dialog').waitFor();
    expect([await place().locator('#policy-method').inputValue(), await place().locator('#policy-consistency').inputValue()]).toEqual(['engine', 'filesystem']);
    await place().locator('#policy-cancel').click();
    await place().locator('#policy-dialog').waitFor({ state: 'detached' });
    await portal.noPluginFailures();
  }, 120_000);

  it("the VM tab names the method web01's next backup will use (its policy's: the engine backup API)", async () => {
    const vms = (await portal.api<VmList>('GET', '/vms')).body.vms;
    expect(vms.find((v) => v.id === web01)?.nextMethod).toBe('engine');
    const tab = await portal.vmTab(web01);
    await tab.waitForSelector('#vm-next-method[data-method="engine"]', { timeout: 30_000 });
    expect(await tab.textContent('#vm-next-method')).toBe('Next backup by: Engine API');
    await page.uncheck(`#vm-select-${web01}`);
    await portal.noPluginFailures();
  }, 60_000);

  it('chain health shows the raw disk of web01 as disk-not-incremental with its fix (method engine)', async () => {
    const raw = stack.sim.vmByName('web01').disks.find((d) => d.format === 'raw');
    if (!raw) throw new Error('the seed gives web01 a raw disk');
    // a point of web01 by the engine method (the forecast is against the last point: without one, every disk is a first backup)
    const started = await portal.api<{ job: { id: string } }>('POST', `/vms/${web01}/backups`, { method: 'engine' });
    const done = await portal.jobDone(started.body.job.id, 240_000);
    expect([done.state, done.error, done.result?.method]).toEqual(['succeeded', null, 'engine']);
    const chain = (await portal.api<VmList>('GET', '/vms')).body.vms.find((v) => v.id === web01)?.chain ?? [];
    expect(chain.find((d) => d.diskId === raw.id)).toMatchObject({ state: 'will-be-full', reason: 'disk-not-incremental' });
    const tab = await portal.vmTab(web01);
    const cell = `#chain-reason-${raw.id}`;
    await tab.waitForSelector(`${cell}[data-reason="disk-not-incremental"]`, { timeout: 30_000 });
    expect(await tab.textContent(cell)).toBe('Enable incremental backup on the disk (Edit disk → Enable Incremental Backup); until then every backup copies it whole');
    await portal.screenshot('chain-disk-not-incremental');
    await page.uncheck(`#vm-select-${web01}`);
    // and the place's VM list says it on the disk's label
    await page.click(`#nav-${PLACE}`);
    await place().getByRole('tab', { name: 'Virtual machines' }).click();
    const label = place().locator(`#vm-chain-${web01}-${raw.id}`);
    await label.waitFor({ timeout: 30_000 });
    expect(await label.getAttribute('title')).toBe(`${raw.alias}: Enable incremental backup on the disk (Edit disk → Enable Incremental Backup); until then every backup copies it whole`);
    await portal.noPluginFailures();
  }, 120_000);
});

import type { FrameLocator, Page, Request } from 'playwright-core';
import type { AuditList, Job, JobList, PointList, PolicyDetail, PolicyInput, PolicyList, PolicyRunList, RetentionPreview } from '../../backend/src/api/contract';
import type { Stack } from '../ui-harness/stack';
import { PLACE, Portal, TAB, until } from './portal';

// Backup policies in the Backup place, driven in Chromium through the WebAdmin harness against
// the real service and the engine simulator's QEMU VMs (web01 and db01 carry the engine tag
// `daily`, app01 none): create a policy by tag, read its next runs, run it now and watch the run
// finish, see app01 flagged as in no policy, and a bad cron refused at its field.

describe('Backup policies in the portal', () => {
  let portal: Portal;
  let stack: Stack;
  let page: Page;
  let vm: Record<'web01' | 'db01' | 'app01', string>;
  let policyId: string;
  const pointsBefore: Record<string, number> = {};
  const newPoints: Record<string, string> = {};

  function place(): FrameLocator {
    return page.frameLocator(`#place-frame-${PLACE}`);
  }

  beforeAll(async () => {
    // a point a backup commits is locked for the service's minimum (7 days by default): this file
    // prunes and previews retention, so the minimum is off and the policy's own lock decides
    portal = await Portal.open('policies', { minLockDays: 0 });
    ({ stack, page } = portal);
    vm = { web01: stack.sim.vmByName('web01').id, db01: stack.sim.vmByName('db01').id, app01: stack.sim.vmByName('app01').id };
    for (const id of Object.values(vm)) pointsBefore[id] = (await portal.api<PointList>('GET', `/vms/${id}/points`)).body.points.length;
    await portal.login(stack.sim.users.admin);
  }, 180_000);

  afterAll(async () => {
    await portal?.close('policies-service.log');
  }, 120_000);

  it('creates a policy by the engine tag daily and shows its next runs', async () => {
    await page.click(`#nav-${PLACE}`);
    await place().locator('#dashboard').waitFor({ timeout: 30_000 });
    await place().getByRole('tab', { name: 'Policies' }).click();
    await place().locator('#policies-table-empty').waitFor({ timeout: 30_000 });

    await place().locator('#policy-create').click();
    await place().locator('#policy-dialog').waitFor();
    // the time zone defaults to the browser's
    const browserZone = await page.evaluate<string>('Intl.DateTimeFormat().resolvedOptions().timeZone');
    expect(await place().locator('#policy-timezone').inputValue()).toBe(browserZone);
    await place().locator('#policy-name').fill('nightly');
    await place().locator('#policy-schedule').fill('30 1 * * *');
    expect(await place().locator('#policy-schedule-text').textContent()).toBe('Every day at 01:30');
    await place().locator('#policy-selection-tag').check();
    await place().locator('#policy-tag').fill('daily');
    await place().locator('#policy-lockdays').fill('7');
    await place().locator('#policy-verifyschedule').fill('0 4 * * 0');
    expect(await place().locator('#policy-verifyschedule-text').textContent()).toBe('Every Sunday at 04:00');
    await place().locator('#policy-save').click();

    // the next runs as the service computed them for the saved policy
    await place().locator('#policy-next-runs-box[data-saved="true"] #policy-next-runs li').nth(4).waitFor({ timeout: 30_000 });
    expect(await place().locator('#policy-next-runs li').count()).toBe(5);
    const list = (await portal.api<PolicyList>('GET', '/policies')).body.policies;
    expect(list.map((p) => p.name)).toEqual(['nightly']);
    policyId = list[0]?.id ?? '';
    const detail = (await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body;
    expect(detail).toMatchObject({ schedule: '30 1 * * *', verifySchedule: '0 4 * * 0', timeZone: browserZone, selection: { tag: 'daily' }, lockDays: 7, enabled: true });
    expect(await place().locator('#policy-next-verify').textContent()).toBe(`Next verify: ${detail.nextVerify?.local}`);
    const shown = await place().locator('#policy-next-runs li').allTextContents();
    detail.nextRuns.forEach((r, i) => expect(shown[i]).toContain(r.local));
    await portal.screenshot('policy-dialog-saved');

    await place().locator('#policy-cancel').click();
    await place().locator('#policy-dialog').waitFor({ state: 'detached' });
    const row = place().locator(`#policy-row-${policyId}`);
    await row.waitFor();
    expect(await place().locator(`#policy-schedule-${policyId}`).textContent()).toContain('Every day at 01:30');
    expect(await row.textContent()).toContain('Tag daily');
    expect(await row.textContent()).toContain('7 days');
    expect(await place().locator(`#policy-verify-${policyId}`).textContent()).toBe('Every Sunday at 04:00');
    await portal.noPluginFailures();
  }, 120_000);

  it('shows the service’s refusal of a bad cron at the schedule field', async () => {
    await place().locator(`#policy-edit-${policyId}`).click();
    await place().locator('#policy-dialog').waitFor();
    expect(await place().locator('#policy-name').inputValue()).toBe('nightly');
    await place().locator('#policy-schedule').fill('61 25 * * *');
    await place().locator('#policy-save').click();
    await place().locator('#policy-schedule-error').waitFor({ timeout: 30_000 });

    // the same words the service answers to this body
    const body = (await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body;
    const input: PolicyInput = { name: body.name, schedule: '61 25 * * *', timeZone: body.timeZone, selection: body.selection, retention: body.retention, lockDays: body.lockDays, concurrency: body.concurrency, window: body.window, enabled: body.enabled };
    const refused = await portal.api<{ error: { message: string } }>('PUT', `/policies/${policyId}`, input);
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/^request body\.schedule: /);
    expect(await place().locator('#policy-schedule-error').textContent()).toBe(refused.body.error.message.replace(/^request body\.schedule: /, ''));
    expect(await place().locator('#policy-schedule').getAttribute('aria-invalid')).toBe('true');
    expect(await place().locator('#policy-error').count()).toBe(0);
    await portal.screenshot('policy-dialog-bad-cron');

    await place().locator('#policy-cancel').click();
    await place().locator('#policy-dialog').waitFor({ state: 'detached' });
    expect((await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body.schedule).toBe('30 1 * * *');
    await portal.noPluginFailures();
  }, 60_000);

  it('runs the policy now: the run finishes in the recent runs and web01 and db01 get new, locked points', async () => {
    await place().locator(`#policy-run-${policyId}`).click();
    await until('the "started" toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((t) => t.message === 'Policy nightly started.'), 30_000);
    const runId = await until('the run in the recent runs', async () => (await portal.api<PolicyRunList>('GET', '/policy-runs')).body.runs[0]?.id, 30_000);
    const state = place().locator(`#policy-run-state-${runId}`);
    await state.waitFor({ timeout: 30_000 });
    await until(
      'the run to finish on the page',
      async () => {
        const s = await state.getAttribute('data-state');
        return s !== null && s !== 'resolving' && s !== 'running';
      },
      300_000,
    );
    expect(await state.getAttribute('data-state')).toBe('succeeded');
    const run = (await portal.api<PolicyRunList>('GET', '/policy-runs')).body.runs.find((r) => r.id === runId);
    expect(run?.trigger).toBe('manual');
    expect(run?.vms.map((v) => v.vmName).sort()).toEqual(['db01', 'web01']);
    for (const v of run?.vms ?? []) {
      expect(v.state).toBe('succeeded');
      expect(await place().locator(`#policy-run-${runId}-vm-${v.vmId}`).getAttribute('data-state')).toBe('succeeded');
    }
    expect(await place().locator(`#policy-run-row-${runId}`).textContent()).toContain('2 of 2 done');

    for (const name of ['web01', 'db01'] as const) {
      const points = (await portal.api<PointList>('GET', `/vms/${vm[name]}/points`)).body.points;
      expect(points.length).toBe((pointsBefore[vm[name]] ?? 0) + 1);
      const newest = points[0];
      expect(newest?.lockedUntil).not.toBeNull();
      expect(Date.parse(newest?.lockedUntil ?? '') - Date.now()).toBeGreaterThan(6 * 86_400_000);
      newPoints[name] = newest?.id ?? '';
    }
    expect((await portal.api<PointList>('GET', `/vms/${vm.app01}/points`)).body.points.length).toBe(pointsBefore[vm.app01]);
    await portal.screenshot('backup-place-policies');
    await portal.noPluginFailures();
  }, 360_000);

  it('shows the lock of the new points in the place and in the VM’s Backups tab', async () => {
    await place().getByRole('tab', { name: 'Restore points' }).click();
    for (const name of ['web01', 'db01'] as const) {
      const lock = place().locator(`#point-lock-${newPoints[name] ?? ''}`);
      await lock.waitFor({ timeout: 30_000 });
      // the lock is set when the run applies retention, after the point appeared
      await until(`the lock of ${name}'s new point`, async () => (await lock.getAttribute('data-locked')) === 'true', 30_000);
      expect(await lock.textContent()).toMatch(/locked until .+/);
      expect(await lock.locator('> svg').count()).toBe(1); // the icon (its inner svgs are its variants)
    }
    await portal.screenshot('backup-place-points-locked');

    await page.click('#nav-vms');
    await page.check(`#vm-select-${vm.web01}`);
    await page.click(`#detail-tab-${TAB}`);
    const tab = await portal.frameOf(`vm-tab.html?vmId=${vm.web01}`);
    const lock = `#point-lock-${newPoints.web01 ?? ''}`;
    await tab.waitForSelector(lock, { timeout: 30_000 });
    expect(await tab.getAttribute(lock, 'data-locked')).toBe('true');
    expect(await tab.textContent(lock)).toMatch(/locked until .+/);
    await page.uncheck(`#vm-select-${vm.web01}`);
    await portal.noPluginFailures();
  }, 120_000);

  it('previews what a retention would remove, keep, or leave to a lock, without removing anything', async () => {
    // a newer, unlocked point of web01: "keep last 1" keeps it and leaves the run's point to its lock
    const started = await portal.api<{ job: Job }>('POST', `/vms/${vm.web01}/backups`, {});
    expect(started.status).toBe(202);
    const manual = await until('the manual backup of web01', async () => {
      const j = (await portal.api<Job>('GET', `/jobs/${started.body.job.id}`)).body;
      return j.state !== 'queued' && j.state !== 'running' ? j : undefined;
    }, 180_000);
    expect(manual.state).toBe('succeeded');
    const manualPoint = manual.result?.pointId ?? '';
    await page.click(`#nav-${PLACE}`);
    await place().getByRole('tab', { name: 'Policies' }).click();
    await place().locator(`#policy-edit-${policyId}`).click();
    await place().locator('#policy-dialog').waitFor();
    for (const [f, v] of [['keeplast', '1'], ['daily', '0'], ['weekly', '0'], ['monthly', '0'], ['yearly', '0']] as const) await place().locator(`#policy-${f}`).fill(v);
    await place().locator('#retention-preview-button').click();
    await place().locator('#retention-preview-result[data-stale="false"]').waitFor({ timeout: 30_000 });

    // the page shows what the service answers for the same values
    const zone = (await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body.timeZone;
    const expected = (await portal.api<RetentionPreview>('POST', '/policies/retention-preview', { selection: { tag: 'daily' }, retention: { keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 }, timeZone: zone })).body;
    expect(expected.vms.map((v) => v.vmName).sort()).toEqual(['db01', 'web01']);
    expect(await place().locator('#retention-preview-summary').textContent()).toBe(
      `${expected.totals.remove} restore point(s) would be removed, ${expected.totals.keep} kept by the rules, ${expected.totals.locked} kept by their retention lock.`,
    );
    for (const v of expected.vms) {
      for (const p of v.points) expect([p.pointId, await place().locator(`#retention-preview-point-${p.pointId}`).getAttribute('data-action')]).toEqual([p.pointId, p.action]);
    }
    // web01: the manual point kept by "last"; the run's point, locked 7 days, left to its lock;
    // db01: the run's point kept by "last" and locked as well
    const web = expected.vms.find((v) => v.vmName === 'web01')?.points ?? [];
    expect(web.slice(0, 2)).toMatchObject([
      { pointId: manualPoint, action: 'keep', keptBy: ['last'], lockedUntil: null },
      { pointId: newPoints.web01, action: 'locked', keptBy: [] },
    ]);
    expect(expected.totals.locked).toBeGreaterThanOrEqual(1);
    await place().getByRole('button', { name: /^web01: / }).click();
    const row = (id: string | undefined): ReturnType<FrameLocator['locator']> => place().locator(`#retention-preview-point-${id ?? ''}`);
    await row(manualPoint).waitFor();
    expect(await row(manualPoint).textContent()).toContain('kept by last');
    expect(await row(newPoints.web01).textContent()).toMatch(/not kept by any rule, but locked until .+/);
    await place().getByRole('button', { name: /^db01: / }).click();
    await row(newPoints.db01).waitFor();
    expect(await row(newPoints.db01).textContent()).toMatch(/^.*kept by last; locked until .+/);
    await portal.screenshot('policy-dialog-retention-preview');

    // a change to the form marks the preview as stale; closing without saving changes nothing
    await place().locator('#policy-keeplast').fill('2');
    await place().locator('#retention-preview-result[data-stale="true"]').waitFor();
    await place().locator('#policy-cancel').click();
    await place().locator('#policy-dialog').waitFor({ state: 'detached' });
    expect((await portal.api<PointList>('GET', `/vms/${vm.web01}/points`)).body.points.length).toBe((pointsBefore[vm.web01] ?? 0) + 2);
    expect((await portal.api<PointList>('GET', `/vms/${vm.db01}/points`)).body.points.length).toBe((pointsBefore[vm.db01] ?? 0) + 1);
    expect((await portal.api<PolicyDetail>('GET', `/policies/${policyId}`)).body.retention).not.toEqual({ keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0 });
    await portal.noPluginFailures();
  }, 120_000);

  it('verifies a point on demand: the verify job ends in a toast and the jobs list', async () => {
    await page.click(`#nav-${PLACE}`);
    await place().getByRole('tab', { name: 'Restore points' }).click();
    const pointId = newPoints.web01 ?? '';
    await place().locator(`#point-verify-${pointId}`).click();
    await until('the "verify started" toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((t) => t.message === 'Verify of web01 started.'), 30_000);
    const job = await until(
      'the verify job to end',
      async () => {
        const j = (await portal.api<JobList>('GET', `/jobs?vmId=${vm.web01}&limit=20`)).body.jobs.find((x: Job) => x.kind === 'verify');
        return j && j.state !== 'queued' && j.state !== 'running' ? j : undefined;
      },
      120_000,
    );
    expect(job.state).toBe('succeeded');
    expect(job.result?.verified).toMatchObject({ points: 1, damaged: [] });
    await until('the verify toast', async () => (await portal.harness<Array<{ message: string }>>('toasts')).some((t) => t.message === 'Verify of web01 finished: 1 restore point(s) checked, every chunk whole.'), 30_000);
    await place().getByRole('tab', { name: 'Jobs' }).click();
    await place().locator(`#job-kind-${job.id}`).waitFor({ timeout: 30_000 });
    expect(await place().locator(`#job-kind-${job.id}`).textContent()).toBe('Verify');
    await portal.noPluginFailures();
  }, 180_000);

  it('shows the audit log as the service has it', async () => {
    await place().getByRole('tab', { name: 'Audit' }).click();
    await place().locator('#audit-table').waitFor({ timeout: 30_000 });
    const entries = (await portal.api<AuditList>('GET', '/audit?limit=500')).body.entries;
    await until('the audit rows', async () => (await place().locator('#audit-table tbody tr').count()) === Math.min(20, entries.length), 30_000);
    if (entries.length === 0) await place().locator('#audit-table-empty').waitFor();
    await portal.screenshot('backup-place-audit');
    await portal.noPluginFailures();
  }, 60_000);

  it('flags app01 on the dashboard as in no policy', async () => {
    await page.click(`#nav-${PLACE}`);
    await place().getByRole('tab', { name: 'Dashboard' }).click();
    await place().locator('#dashboard').waitFor({ timeout: 30_000 });
    await place().locator(`#no-policy-vm-${vm.app01}`).waitFor({ timeout: 30_000 });
    expect(await place().locator(`#no-policy-vm-${vm.app01}`).textContent()).toBe('app01');
    expect(await place().locator(`#no-policy-vm-${vm.web01}`).count()).toBe(0);
    expect(await place().locator(`#no-policy-vm-${vm.db01}`).count()).toBe(0);
    expect(await place().locator('#no-policy-vms').getAttribute('data-count')).toBe('1');
    expect(await place().locator('#no-policy-count').textContent()).toContain('1 VM(s)');
    await portal.screenshot('backup-place-dashboard-no-policy');
    await portal.noPluginFailures();
  }, 60_000);

  it('deletes the policy after a confirmation, once however often it is clicked; then every VM is in no policy', async () => {
    await place().getByRole('tab', { name: 'Policies' }).click();
    await place().locator(`#policy-delete-${policyId}`).click();
    await place().locator('#policy-delete-dialog').waitFor();
    await place().locator('#policy-delete-cancel').click();
    await place().locator('#policy-delete-dialog').waitFor({ state: 'detached' });
    expect((await portal.api('GET', `/policies/${policyId}`)).status).toBe(200);
    await place().locator(`#policy-delete-${policyId}`).click();
    // a double click on the confirmation deletes once: one DELETE, no "could not be deleted" toast
    const deletes: string[] = [];
    const onRequest = (r: Request): void => void (r.method() === 'DELETE' && deletes.push(r.url()));
    page.on('request', onRequest);
    try {
      await place().locator('#policy-delete-confirm').dblclick();
      await place().locator(`#policy-row-${policyId}`).waitFor({ state: 'detached', timeout: 30_000 });
    } finally {
      page.off('request', onRequest);
    }
    expect(deletes).toEqual([expect.stringMatching(new RegExp(`/policies/${policyId}$`))]);
    expect((await portal.harness<Array<{ message: string }>>('toasts')).filter((t) => t.message.includes('could not be deleted'))).toEqual([]);
    expect((await portal.api('GET', `/policies/${policyId}`)).status).toBe(404);
    await place().getByRole('tab', { name: 'Dashboard' }).click();
    await place().locator(`#no-policy-vm-${vm.web01}`).waitFor({ timeout: 30_000 });
    expect(await place().locator('#no-policy-vms').getAttribute('data-count')).toBe('3');
    await portal.noPluginFailures();
  }, 60_000);
});

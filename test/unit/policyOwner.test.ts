import { EVERYONE_GROUP_ID, SUPER_USER_ROLE_ID, type PermissionEntry, type PermitObject } from '../../backend/src/engine';
import { ownerCheck, type OwnerEngine } from '../../backend/src/schedule';

const OWNER = { id: 'aaaaaaaa-0000-4000-8000-000000000001', name: 'op@internal-authz', groupIds: ['bbbbbbbb-0000-4000-8000-000000000002'], groupNames: ['operators'] };
const VM1 = 'cccccccc-0000-4000-8000-000000000001';
const VM2 = 'cccccccc-0000-4000-8000-000000000002';

const grant = (principalId: string, permits: string[], roleId = 'role-user'): PermissionEntry => ({
  id: `perm-${principalId}-${roleId}`,
  roleId,
  roleName: roleId,
  administrative: roleId === SUPER_USER_ROLE_ID,
  permits,
  principal: { kind: principalId === OWNER.id ? 'user' : 'group', id: principalId },
});

/** The service account's unfiltered view: every principal's grants per object; counts the asks. */
class FakeEngine implements OwnerEngine {
  readonly asked: string[] = [];
  constructor(private readonly grants: Record<string, PermissionEntry[]>) {}
  listPermissions(obj: PermitObject): Promise<PermissionEntry[]> {
    const key = obj.kind === 'system' ? 'system' : obj.id;
    this.asked.push(key);
    return Promise.resolve(this.grants[key] ?? []);
  }
}

describe("a policy run's owner check (schedule/owner.ts)", () => {
  const byVmIds = { owner: OWNER, selection: { vmIds: [VM1, VM2] } };

  test('backup_disk granted to Everyone counts for the owner, as it does when they save the policy', async () => {
    const engine = new FakeEngine({ [VM1]: [grant(EVERYONE_GROUP_ID, ['backup_disk'])], [VM2]: [grant('someone-else', ['backup_disk'])] });
    const check = await ownerCheck(engine, byVmIds, []);
    expect(await check(VM1)).toBeNull();
    expect(await check(VM2)).toMatch(/no longer holds backup_disk/);
  });

  test('SuperUser through Everyone, or Everyone named in auth.backupAdmins, makes the owner a backup admin', async () => {
    const bySearch = { owner: OWNER, selection: { search: 'name=web*' } };
    expect(await (await ownerCheck(new FakeEngine({ system: [grant(EVERYONE_GROUP_ID, [], SUPER_USER_ROLE_ID)] }), bySearch, []))(VM1)).toBeNull();
    expect(await (await ownerCheck(new FakeEngine({}), bySearch, ['everyone']))(VM1)).toBeNull();
    expect(await (await ownerCheck(new FakeEngine({}), bySearch, []))(VM1)).toMatch(/no longer a backup admin/);
  });

  test("the system's permissions are read once per run, each vm's as the run reaches it", async () => {
    const engine = new FakeEngine({ [VM1]: [grant(OWNER.groupIds[0]!, ['backup_disk'])], [VM2]: [grant(OWNER.id, ['backup_disk'])] });
    const check = await ownerCheck(engine, byVmIds, []);
    expect([await check(VM1), await check(VM2), await check(VM1)]).toEqual([null, null, null]);
    expect(engine.asked).toEqual(['system', VM1, VM2, VM1]);
  });

  test('an engine that cannot answer denies every vm with the reason (fail closed)', async () => {
    const engine: OwnerEngine = { listPermissions: () => Promise.reject(new Error('engine down')) };
    const check = await ownerCheck(engine, byVmIds, []);
    expect(await check(VM1)).toMatch(/could not be checked: .*engine down/);
  });
});

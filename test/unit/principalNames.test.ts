import { principalNames } from '../../backend/src/engine';

describe('principalNames (auth.backupAdmins)', () => {
  it('matches a user by the login profile or the authz name the API gives, without case', () => {
    const named = principalNames(['ops@internal', 'Backup-Admins']);
    expect(named('ops@internal-authz')).toBe(true);
    expect(named('OPS@internal')).toBe(true);
    expect(named('backup-admins')).toBe(true);
  });

  it('matches the authz form when that is what was configured', () => {
    const named = principalNames(['ops@internal-authz']);
    expect(named('ops@internal')).toBe(true);
    expect(named('ops@internal-authz')).toBe(true);
  });

  it('matches nothing else: another user, another domain, a suffix alone, an empty list', () => {
    const named = principalNames(['ops@internal']);
    expect(named('ops2@internal-authz')).toBe(false);
    expect(named('ops@ldap.example.com')).toBe(false);
    expect(named('ops@internal-authz-x')).toBe(false);
    expect(named('ops')).toBe(false);
    expect(principalNames([])('ops@internal')).toBe(false);
    // a group whose name happens to end like an authz keeps its name
    expect(principalNames(['team-authz'])('team')).toBe(false);
  });
});

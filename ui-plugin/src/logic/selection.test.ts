// Unit tests of reading WebAdmin's VM selection for the buttons.
import { canBackup, canRestore, toSelectedVms } from './selection';
import { eventsUrl, serviceUrlFromConfig } from './serviceConfig';

describe('VM selection from WebAdmin', () => {
  const web = { id: 'v1', name: 'web01', ipaddress: '', status: 'Up', managed: true };
  const db = { id: 'v2', name: 'db01', ipaddress: '', status: 'Down', managed: true };

  it('enables Backup now for one or more VMs and Restore for exactly one, always as booleans', () => {
    expect(canBackup([web])).toBe(true);
    expect(canBackup([web, db])).toBe(true);
    expect(canBackup([])).toBe(false);
    expect(canRestore([web])).toBe(true);
    expect(canRestore([web, db])).toBe(false);
    // garbage from an older engine: still a real boolean
    for (const x of [undefined, null, 'web01', { id: 'v1' }, [{}], [{ id: '' }]]) {
      expect(typeof canBackup(x)).toBe('boolean');
      expect(typeof canRestore(x)).toBe('boolean');
    }
  });

  it('reads EntityObjects defensively', () => {
    expect(toSelectedVms([web, { id: 'v3' }, null, 7])).toEqual([
      { id: 'v1', name: 'web01', status: 'Up' },
      { id: 'v3', name: 'v3', status: '' },
    ]);
  });
});

describe('service URL from the plugin config', () => {
  it('accepts http(s) URLs and strips trailing slashes', () => {
    expect(serviceUrlFromConfig({ serviceUrl: 'https://backup.example:8443/' })).toEqual({ ok: true, url: 'https://backup.example:8443' });
    expect(serviceUrlFromConfig({ serviceUrl: 'http://10.0.0.1:8080/olvm//' })).toEqual({ ok: true, url: 'http://10.0.0.1:8080/olvm' });
    expect(eventsUrl('https://b.example:8443', '/api/v1')).toBe('wss://b.example:8443/api/v1/events');
    expect(eventsUrl('http://127.0.0.1:4000', '/api/v1')).toBe('ws://127.0.0.1:4000/api/v1/events');
  });

  it('says what is wrong otherwise', () => {
    expect(serviceUrlFromConfig({})).toEqual({ ok: false, problem: 'serviceUrl is not set in the plugin configuration' });
    expect(serviceUrlFromConfig(undefined).ok).toBe(false);
    expect(serviceUrlFromConfig({ serviceUrl: 'backup:8443' }).ok).toBe(false);
    expect(serviceUrlFromConfig({ serviceUrl: 'ftp://x' }).ok).toBe(false);
  });
});

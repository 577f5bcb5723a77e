import { EngineClient, type Host } from '../engine';
import { AppError, isAppError } from '../errors';
import { engineMethodPermits, missingPermitsError } from './enginePermits';

export interface AccountCheck {
  /** `user@authz` as the engine names the account */
  userName: string;
  product: string;
  hosts: Host[];
  /** What the engine backup method needs and was found; undefined when not checked (method qmp). */
  engineMethod: string | undefined;
}

/**
 * Logs in as the service account and checks what the service needs from it: a password login
 * (password grant) and an administrative view of the engine, because backups list and start
 * VMs of every user and read hosts; a user-level account sees only its own VMs and no hosts.
 * Unless backups use the qmp method only, also the permits of the engine backup method
 * (enginePermits.ts), read from the permission lists. The other permits (run/stop VMs, restores'
 * disks, events, tags) are named in docs/install.md.
 */
export async function checkServiceAccount(o: { url: string; user: string; password: string; caFile: string | undefined; backupMethod: string }): Promise<AccountCheck> {
  const engine = new EngineClient({
    baseUrl: o.url,
    ...(o.caFile !== undefined ? { caFile: o.caFile } : {}),
    timeoutMs: 30_000,
    auth: { kind: 'password', user: o.user, password: o.password },
  });
  try {
    const me = await engine.getCurrentUser().catch((err: unknown) => {
      if (isAppError(err, 'ENGINE_AUTH_FAILED')) {
        throw new AppError('ENGINE_AUTH_FAILED', `the engine refused the login of ${o.user}: check the user name (user@profile, e.g. olvm-backup@internal) and its password`, { cause: err });
      }
      throw err;
    });
    const info = await engine.getApiInfo();
    try {
      // a non-admin asking for the unfiltered view is refused (ENGINE_API_FILTER_BY_DEFAULT)
      await engine.connection.request({ method: 'GET', path: '/vms', query: { filter: false, max: 1 } });
    } catch (err) {
      if (isAppError(err, 'ENGINE_HTTP_ERROR') && (err.details?.['status'] === 403 || err.details?.['status'] === 400)) {
        throw new AppError(
          'SETUP_PERMISSION_MISSING',
          `${o.user} (${me.userName}) has no administrative role on the engine: the service must see every VM and host. ` +
            'Give it an administrative role on System or on the data centers to back up (docs/install.md, "The service account")',
          { cause: err },
        );
      }
      throw err;
    }
    const hosts = await engine.listHosts();
    let engineMethod: string | undefined;
    if (o.backupMethod !== 'qmp') {
      const { missing, found } = await engineMethodPermits(engine, me);
      if (missing.length > 0) throw missingPermitsError(`${o.user} (${me.userName})`, o.backupMethod, missing);
      engineMethod = found;
    }
    const v = info.version;
    const product = `${info.productName ?? 'engine'}${v ? ` ${v.fullVersion || `${v.major}.${v.minor}`}` : ''}`;
    return { userName: me.userName, product, hosts, engineMethod };
  } finally {
    await engine.close();
  }
}

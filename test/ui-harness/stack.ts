import { promises as fs } from 'fs';
import * as path from 'path';
import { EngineSim } from '../engine-sim';
import { WebAdminHarness } from './server';
import { ServiceProcess, type ServiceOptions } from './serviceProcess';

/** Where `npm run build` puts the plugin (the folder the engine's ui-plugins dir gets). */
export const PLUGIN_DIST = path.resolve(__dirname, '../../../ui-plugin/dist');

export interface Stack {
  sim: EngineSim;
  service: ServiceProcess;
  harness: WebAdminHarness;
  /** The service's data dir (repository, catalog). */
  serviceDir: string;
  close(): Promise<void>;
}

/**
 * The whole product on this machine: the engine simulator (real QEMU VMs), the backup service
 * on its embedded default (a data dir), and the WebAdmin harness serving the built plugin with
 * serviceUrl pointing at the service. The harness starts first: the service needs its origin
 * for CORS, the harness learns the service URL after.
 */
/** The service's own options a test may set (ServiceOptions: minimum lock, backup admins). */
export type StackServiceOptions = Pick<ServiceOptions, 'minLockDays' | 'backupAdmins'>;

export async function startStack(o: { dir: string; tls?: boolean; harnessPort?: number; servicePort?: number; service?: StackServiceOptions }): Promise<Stack> {
  const descriptor = path.join(PLUGIN_DIST, 'olvm-backup.json');
  if (!(await fs.stat(descriptor).catch(() => null))) throw new Error(`the plugin is not built (${descriptor} missing): run npm run build`);
  await fs.mkdir(o.dir, { recursive: true });
  const sim = await EngineSim.start({ dataDir: path.join(o.dir, 'engine'), tls: o.tls ?? false });
  let harness: WebAdminHarness | undefined;
  let service: ServiceProcess | undefined;
  try {
    harness = await WebAdminHarness.start({ pluginDist: PLUGIN_DIST, engineBaseUrl: sim.baseUrl, engineCaFile: sim.caFile, port: o.harnessPort });
    const passwordFile = path.join(o.dir, 'engine-password');
    await fs.writeFile(passwordFile, sim.users.admin.password, { mode: 0o600 });
    const serviceDir = path.join(o.dir, 'service');
    service = new ServiceProcess({
      dataDir: serviceDir,
      engineUrl: sim.baseUrl,
      engineUser: sim.users.admin.name,
      enginePasswordFile: passwordFile,
      engineCaFile: sim.caFile,
      qmpDir: sim.qmpDir,
      corsOrigin: harness.origin,
      port: o.servicePort,
      logFile: path.join(o.dir, 'service.log'),
      ...o.service,
    });
    harness.setServiceUrl(await service.start());
    const h = harness;
    const s = service;
    return {
      sim,
      service: s,
      harness: h,
      serviceDir,
      close: async () => {
        await s.close();
        await h.close();
        await sim.close();
      },
    };
  } catch (err) {
    await service?.close().catch(() => undefined);
    await harness?.close().catch(() => undefined);
    await sim.close();
    throw err;
  }
}

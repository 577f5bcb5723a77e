/**
 * `npm run demo`: the product as an OLVM admin sees it, on this machine with nothing to set up.
 * Starts the engine simulator (SSO, REST; its VMs are real QEMU processes), the backup service
 * (`olvm-backup serve`) on its embedded default repository, and a WebAdmin stand-in serving the
 * built UI plugin unmodified; prints the URL and the logins, and runs until Ctrl-C.
 *
 *   --data-dir DIR   where everything lives (default ./.demo-data; kept between runs, so the
 *                    VMs, restore points and passwords are still there next time)
 *   --fresh          start from an empty data dir
 *   --port N         the portal's port (default 8090; 0 = any free port)
 *   --no-tls         the simulated engine over plain HTTP (default: HTTPS with its own CA)
 *   --once           start, check that the portal and the service answer, print, stop (CI smoke)
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { startStack, type Stack } from '../ui-harness/stack';

interface Args {
  dataDir: string;
  fresh: boolean;
  port: number;
  tls: boolean;
  once: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { dataDir: path.resolve('.demo-data'), fresh: false, port: 8090, tls: true, once: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--data-dir') a.dataDir = path.resolve(argv[++i] ?? '');
    else if (x === '--fresh') a.fresh = true;
    else if (x === '--port') a.port = Number(argv[++i]);
    else if (x === '--no-tls') a.tls = false;
    else if (x === '--once') a.once = true;
    else throw new Error(`unknown option ${x} (options: --data-dir DIR --fresh --port N --no-tls --once)`);
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error('--port wants 0..65535');
  return a;
}

async function check(stack: Stack): Promise<void> {
  const page = await fetch(stack.harness.url);
  if (!page.ok || !(await page.text()).includes('pluginDefinitions')) throw new Error(`the portal page answered ${page.status}`);
  const plugin = await fetch(`${stack.harness.origin}/ovirt-engine/webadmin/plugin/olvm-backup/plugin.html`);
  if (!plugin.ok) throw new Error(`the plugin's host page answered ${plugin.status}`);
  const health = await fetch(`${stack.service.url}/api/v1/health`);
  if (!health.ok) throw new Error(`the backup service's health answered ${health.status}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.fresh) await fs.rm(args.dataDir, { recursive: true, force: true });
  process.stdout.write(`starting the engine simulator (QEMU VMs), the backup service and the portal in ${args.dataDir} …\n`);
  const stack = await startStack({ dir: args.dataDir, tls: args.tls, harnessPort: args.port });
  let closing: Promise<void> | null = null;
  const stop = (): Promise<void> => (closing ??= stack.close());
  try {
    await check(stack);
    const vms = stack.sim.vmIds().map((id) => stack.sim.vmById(id));
    const out = [
      '',
      `  Open the admin portal:  ${stack.harness.url}`,
      '',
      `  Log in as               ${stack.sim.users.admin.name}  password ${stack.sim.users.admin.password}   (sees every VM)`,
      `                       or ${stack.sim.users.plain.name}  password ${stack.sim.users.plain.password}   (sees web01 only)`,
      '',
      `  VMs (real QEMU):        ${vms.map((v) => `${v.name} (${v.status})`).join(', ')}`,
      '  Try: Virtual Machines → tick web01 → "Backup now", then its "Backups" tab; the "Backup" menu entry is the dashboard.',
      '',
      `  engine simulator        ${stack.sim.baseUrl}`,
      `  backup service          ${stack.service.url}   (data: ${stack.serviceDir}, log: ${path.join(args.dataDir, 'service.log')})`,
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    if (args.once) {
      process.stdout.write('demo: --once, everything answered; stopping\n');
      await stop();
      return;
    }
    process.stdout.write('Ctrl-C stops everything.\n');
    await new Promise<void>((resolve) => {
      const onSignal = (): void => {
        process.stdout.write('\nstopping …\n');
        resolve();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
    });
    await stop();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { HostsKind, Prompter, ServiceOwner } from '../../setup';
import { printLine } from '../output';
import { addressList, parseSudoSyntax } from './hostAccess';

interface SetupFlags {
  config: string;
  engineUrl?: string;
  engineUser?: string;
  enginePasswordFile?: string;
  engineCaFile?: string;
  engineCaFingerprint?: string;
  acceptEngineCa?: boolean;
  dataDir?: string;
  repository?: string;
  listenHost?: string;
  port?: string;
  corsOrigin?: string[];
  qmpDir?: string;
  hostsKind?: string;
  sshUser?: string;
  sshFrom?: string[];
  hostAccessDir?: string;
  sudoSyntax?: string;
  sshKey?: string;
  sshPort?: string;
  hostQmpDir?: string;
  libvirtUri?: string;
  qemuOwner?: string;
  hostScratchDir?: string;
  hostKey?: string[];
  acceptHostKeys?: boolean;
  owner?: string;
  backupMethod?: string;
  interactive?: boolean;
}

const SERVICE_USER = 'olvm-backup';

export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description('first run (safe to repeat): pin the engine CA, check the service account, pin the hosts\' SSH keys, create the repository, write the config')
    .option('--config <file>', 'the config file to write', '/etc/olvm-backup/config.yaml')
    .option('--engine-url <url>', 'engine base URL, https://<fqdn>/ovirt-engine')
    .option('--engine-user <user>', 'service account (default olvm-backup@internal)')
    .option('--engine-password-file <file>', "file holding the account's password (or OLVM_BACKUP_ENGINE_PASSWORD); copied beside the config, mode 0600")
    .option('--engine-ca-file <file>', 'trust this CA for the engine instead of fetching it')
    .option('--engine-ca-fingerprint <sha256>', 'pin the CA the engine serves only if its SHA-256 fingerprint is this')
    .option('--accept-engine-ca', 'pin the CA the engine serves without a fingerprint (it is printed)')
    .option('--data-dir <dir>', 'repository, catalog and scratch space (default /var/lib/olvm-backup)')
    .option('--repository <dir>', 'the repository (default <data-dir>/repository)')
    .option('--listen-host <host>', 'address the service listens on (default 127.0.0.1)')
    .option('--port <port>', 'port the service listens on (default 8780)')
    .option('--cors-origin <origin...>', 'browser origins allowed to call the service (default the engine\'s)')
    .option('--qmp-dir <dir>', 'the VMs run on this machine: a VM\'s QMP socket is <dir>/<vm id>.qmp (no hosts file)')
    .option('--hosts-kind <kind>', 'how new hosts are reached: libvirt (OLVM hosts, default) or qmp-socket')
    .option('--ssh-user <user>', 'SSH user on the hosts (default root); another account gets its authorized_keys line, sudoers rule and sshd block printed (HOSTS.md)')
    .option('--ssh-from <address...>', "this server's address(es) in a restricted account's from=\"…\" (default: the address each host sees)")
    .option('--host-access-dir <dir>', "write each restricted account's files into <dir>/<host address>/ to copy to the host")
    .option('--sudo-syntax <syntax>', 'the sudoers rule for sudo 1.9.10 or later (regex, default) or older sudo (glob)')
    .option('--ssh-key <file>', 'the service\'s SSH private key (default <config dir>/ssh/id_ed25519, created if missing)')
    .option('--ssh-port <port>', 'SSH port of the hosts (default 22)')
    .option('--host-qmp-dir <dir>', 'qmp-socket hosts: directory of the VMs\' QMP sockets on the host')
    .option('--libvirt-uri <uri>', 'libvirt hosts: virsh connection URI (default qemu:///system)')
    .option('--qemu-owner <user:group>', 'owner of the scratch files QEMU opens on the hosts (libvirt default qemu:qemu)')
    .option('--host-scratch-dir <dir>', 'scratch directory on the hosts (default /var/tmp/olvm-backup)')
    .option('--host-key <address=sha256...>', 'pin this host key fingerprint for the host with this address (repeatable)')
    .option('--accept-host-keys', 'pin the keys the hosts present without fingerprints (they are printed)')
    .option('--owner <user>', `account the service runs as (default ${SERVICE_USER} when it exists and setup runs as root)`)
    .option('--backup-method <method>', 'backup.method: auto (default), qmp or engine; unless qmp, the account must hold backup_disk, edit_disk_properties and create_disk (checked)')
    .option('--interactive', 'ask for what is missing even when stdin is not a terminal (answers one per line)')
    .action(async (f: SetupFlags) => {
      const { linePrompter, runSetup } = await import('../../setup');
      const prompter: Prompter | undefined = f.interactive || process.stdin.isTTY ? linePrompter(process.stdin, process.stdout) : undefined;
      try {
        await runSetup(
          {
            configFile: f.config,
            ...defined({
              engineUrl: f.engineUrl,
              engineUser: f.engineUser,
              enginePasswordFile: f.enginePasswordFile,
              enginePassword: process.env['OLVM_BACKUP_ENGINE_PASSWORD'] || undefined,
              engineCaFile: f.engineCaFile,
              engineCaFingerprint: f.engineCaFingerprint,
              acceptEngineCa: f.acceptEngineCa,
              dataDir: f.dataDir,
              repository: f.repository,
              listenHost: f.listenHost,
              listenPort: port(f.port, '--port'),
              corsOrigins: f.corsOrigin,
              qmpDir: f.qmpDir,
              hostsKind: hostsKind(f.hostsKind),
              sshUser: f.sshUser,
              sshFrom: f.sshFrom && addressList(f.sshFrom),
              hostAccessDir: f.hostAccessDir,
              sudoSyntax: f.sudoSyntax === undefined ? undefined : parseSudoSyntax(f.sudoSyntax),
              sshKey: f.sshKey,
              sshPort: port(f.sshPort, '--ssh-port'),
              hostQmpDir: f.hostQmpDir,
              libvirtUri: f.libvirtUri,
              qemuOwner: f.qemuOwner,
              hostScratchDir: f.hostScratchDir,
              hostKeys: hostKeys(f.hostKey),
              acceptHostKeys: f.acceptHostKeys,
              owner: await owner(f.owner),
              backupMethod: f.backupMethod,
            }),
          },
          { say: printLine, ...(prompter ? { prompter } : {}) },
        );
      } finally {
        prompter?.close();
      }
    });
}

function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new AppError('INVALID_ARGUMENT', `${flag} must be a port number (got ${v})`);
  return n;
}

function hostsKind(v: string | undefined): HostsKind | undefined {
  if (v === undefined) return undefined;
  if (v !== 'libvirt' && v !== 'qmp-socket') throw new AppError('INVALID_ARGUMENT', `--hosts-kind must be libvirt or qmp-socket (got ${v})`);
  return v;
}

function hostKeys(v: string[] | undefined): Map<string, string> | undefined {
  if (!v) return undefined;
  const m = new Map<string, string>();
  for (const item of v) {
    const i = item.indexOf('=');
    if (i <= 0) throw new AppError('INVALID_ARGUMENT', `--host-key must be ADDRESS=SHA256:... (got ${item})`);
    m.set(item.slice(0, i), item.slice(i + 1));
  }
  return m;
}

/** --owner NAME must exist; by default the service account, when setup runs as root and it exists. */
async function owner(name: string | undefined): Promise<ServiceOwner | undefined> {
  const { lookupUser } = await import('../../setup');
  if (name !== undefined) {
    const o = lookupUser(name);
    if (!o) throw new AppError('INVALID_ARGUMENT', `--owner: there is no user ${name}`);
    return o;
  }
  return process.getuid?.() === 0 ? lookupUser(SERVICE_USER) : undefined;
}

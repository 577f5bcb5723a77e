import * as os from 'os';
import * as path from 'path';
import { AppError } from '../errors';
import { groupOf, hostAccessFiles, type HostAccessFiles, type HostEntry, type HostsConfig } from '../hosts';
import { decidePin } from './hostKeyPins';
import { checkSshLogin, checkSudoRule, newClientKey, publicKeyOf, scanHostKey } from './hostKeys';
import type { HostsKind, SetupIo, SetupOptions, SetupResult } from './types';
import { readText } from './util';

/** What a host must grant a restricted (non-root) account, and whether it does yet. */
export interface HostAccessPlan {
  name: string;
  address: string;
  user: string;
  /** undefined when the host could not be reached (no address for from="…" known) */
  files: HostAccessFiles | undefined;
  /** login refused, or sudo not allowing every command line: the admin has to install these */
  needed: boolean;
}

/** The hosts file to write, the service's SSH key, and what was decided per host. */
export interface HostsPlan {
  file: string;
  config: HostsConfig;
  key: { file: string; privateKey: string; publicKey: string; create: boolean };
  report: SetupResult['hosts'];
  access: HostAccessPlan[];
}

/**
 * Every host the engine lists, its presented key read and pinned or refused (hostKeyPins.ts),
 * merged into the existing hosts file (entries of other hosts kept); the service's SSH key read
 * or made in memory, and its login tried on each pinned host.
 */
export async function planHosts(o: SetupOptions, file: string, kind: HostsKind, configDir: string, engineHosts: Array<{ name: string; address: string }>, io: SetupIo): Promise<HostsPlan> {
  const existing = await readHostsFile(file);
  const byMatch = new Map(existing.hosts.map((h) => [h.match, h]));
  const keyFile = path.resolve(o.sshKey ?? existing.hosts.find((h) => h.ssh?.privateKeyFile)?.ssh?.privateKeyFile ?? path.join(configDir, 'ssh', 'id_ed25519'));
  const comment = `olvm-backup@${os.hostname()}`;
  const oldKey = await readText(keyFile);
  const key = oldKey !== undefined ? { privateKey: oldKey, publicKey: publicKeyOf(oldKey, comment), create: false } : { ...newClientKey(comment), create: true };
  const user = await sshUser(o, existing, engineHosts, io);

  const report: HostsPlan['report'] = [];
  const access: HostAccessPlan[] = [];
  const hosts = [...existing.hosts];
  io.say(engineHosts.length > 0 ? 'hosts:' : 'hosts: the engine lists none');
  for (const h of engineHosts) {
    const prior = byMatch.get(h.address);
    const port = o.sshPort ?? prior?.ssh?.port ?? 22;
    const scanned = await scanHostKey(h.address, port).catch(() => undefined);
    const decision = await decidePin(
      { name: h.name, address: h.address, port, scanned, pinned: prior?.ssh?.hostKey, expected: o.hostKeys?.get(h.address) },
      { acceptAll: o.acceptHostKeys === true, prompter: io.prompter },
    );
    let login: string | undefined;
    let sudo: string | undefined;
    if (decision.kind !== 'skip') {
      const entry = prior ? updatedEntry(prior, o, keyFile, decision.hostKey) : newEntry(o, kind, h.address, port, user, keyFile, decision.hostKey);
      if (prior) hosts[hosts.indexOf(prior)] = entry;
      else hosts.push(entry);
      const ssh = entry.ssh as NonNullable<HostEntry['ssh']>;
      const privateKey = ssh.privateKeyFile === keyFile ? key.privateKey : await readText(ssh.privateKeyFile).catch(() => undefined);
      if (!scanned) login = 'host unreachable';
      else if (privateKey === undefined) login = `cannot read ${ssh.privateKeyFile}`;
      else login = await checkSshLogin({ address: h.address, port, user: ssh.user, privateKey, hostKey: decision.hostKey });
      if (ssh.user !== 'root') {
        // a restricted account: what the host must grant it, and (logged in) whether sudo does
        const sudoNeeded = entry.kind === 'libvirt' && entry.sudo !== false;
        if (sudoNeeded && login === undefined && privateKey !== undefined) {
          sudo = (await checkSudoRule({ address: h.address, port, user: ssh.user, privateKey, hostKey: decision.hostKey, libvirtUri: entry.libvirtUri })) ?? 'ok';
        }
        const from = o.sshFrom ?? (scanned?.localAddress ? [scanned.localAddress] : undefined);
        const files = from
          ? hostAccessFiles({
              user: ssh.user,
              publicKey: key.publicKey,
              from,
              kind: entry.kind === 'libvirt' ? 'libvirt' : 'qmp-socket',
              ...(entry.libvirtUri ? { libvirtUri: entry.libvirtUri } : {}),
              ...(groupOf(entry.qemuOwner) ? { qemuGroup: groupOf(entry.qemuOwner) } : {}),
              ...(entry.scratchDir ? { scratchDir: entry.scratchDir } : {}),
              ...(o.sudoSyntax ? { sudoSyntax: o.sudoSyntax } : {}),
            })
          : undefined;
        access.push({ name: h.name, address: h.address, user: ssh.user, files, needed: login !== undefined || (sudo !== undefined && sudo !== 'ok') });
      }
    }
    const sudoNote = sudo === undefined ? '' : sudo === 'ok' ? ', sudo rule ok' : `, sudo rule missing: ${sudo}`;
    io.say(`  ${h.name}  ${h.address}:${port}  ${scanned ? `${scanned.type} ${scanned.fingerprint}` : '(no answer)'}  ${decision.note}${login === undefined ? (decision.kind === 'skip' ? '' : ', login ok') : `, login failed: ${login}`}${sudoNote}`);
    report.push({ name: h.name, address: h.address, fingerprint: scanned?.fingerprint, decision: decision.kind, note: decision.note, login, ...(sudo !== undefined ? { sudo: sudo === 'ok' ? undefined : sudo } : {}) });
  }
  return { file, config: { hosts }, key: { file: keyFile, ...key }, report, access };
}

/** --ssh-user, else the user of the hosts already in the file, else asked (interactive), else root. */
async function sshUser(o: SetupOptions, existing: HostsConfig, engineHosts: Array<{ address: string }>, io: SetupIo): Promise<string> {
  if (o.sshUser) return o.sshUser;
  const known = existing.hosts.find((h) => h.ssh?.user)?.ssh?.user;
  if (known) return known;
  const newHosts = engineHosts.some((h) => !existing.hosts.some((e) => e.match === h.address));
  if (!io.prompter || !newHosts) return 'root';
  const a = await io.prompter.ask('SSH user on the KVM hosts (root, or a restricted account such as olvm-backup: setup prints what each host must grant it)', { default: 'root' });
  return a === '' ? 'root' : a;
}

function newEntry(o: SetupOptions, kind: HostsKind, address: string, port: number, user: string, keyFile: string, hostKey: string): HostEntry {
  const entry: HostEntry = {
    match: address,
    kind,
    ssh: { ...(port !== 22 ? { port } : {}), user, privateKeyFile: keyFile, hostKey },
    scratchDir: o.hostScratchDir ?? '/var/tmp/olvm-backup',
  };
  if (kind === 'libvirt') {
    if (o.libvirtUri) entry.libvirtUri = o.libvirtUri;
    entry.qemuOwner = o.qemuOwner ?? 'qemu:qemu';
    // said explicitly for whoever reads the hosts file (it is the default for a non-root user)
    if (user !== 'root') entry.sudo = true;
  } else {
    entry.qmpDir = o.hostQmpDir ?? '/var/run/olvm-backup/qmp';
    if (o.qemuOwner) entry.qemuOwner = o.qemuOwner;
  }
  return entry;
}

/** An entry already in the hosts file: the new pin, and what the flags of this run say explicitly. */
function updatedEntry(prior: HostEntry, o: SetupOptions, keyFile: string, hostKey: string): HostEntry {
  const ssh = prior.ssh as NonNullable<HostEntry['ssh']>;
  return {
    ...prior,
    ...(o.hostsKind ? { kind: o.hostsKind } : {}),
    ...(o.hostQmpDir ? { qmpDir: o.hostQmpDir } : {}),
    ...(o.libvirtUri ? { libvirtUri: o.libvirtUri } : {}),
    ...(o.qemuOwner ? { qemuOwner: o.qemuOwner } : {}),
    ...(o.hostScratchDir ? { scratchDir: o.hostScratchDir } : {}),
    ssh: {
      ...ssh,
      ...(o.sshPort ? { port: o.sshPort } : {}),
      ...(o.sshUser ? { user: o.sshUser } : {}),
      ...(o.sshKey ? { privateKeyFile: keyFile } : {}),
      hostKey,
    },
  };
}

export async function readHostsFile(file: string): Promise<HostsConfig> {
  const text = await readText(file);
  if (text === undefined) return { hosts: [] };
  const parsed = JSON.parse(text) as { hosts?: unknown };
  if (!Array.isArray(parsed.hosts)) throw new AppError('INVALID_ARGUMENT', `the hosts file ${file} has no "hosts" list`);
  return { hosts: parsed.hosts as HostEntry[] };
}

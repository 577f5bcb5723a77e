import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CONFIG_BACKUP_METHODS, loadConfig, type ServiceConfig } from '../config';
import { AppError } from '../errors';
import { Repository } from '../repository';
import { decideCa, tempCa } from './caTrust';
import { applySettings, corsOriginsFor, readExisting, type ConfigSettings } from './configDoc';
import { checkServiceAccount } from './engineAccount';
import { ensureDir, writeFileSafely, type ServiceOwner, type WriteResult } from './files';
import { formatHostAccess, hostAccessTexts } from './hostAccessOut';
import { planHosts, readHostsFile, type HostsPlan } from './hostsPlan';
import type { Prompter } from './prompt';
import { reportStore } from './storeReport';
import type { HostsKind, SetupIo, SetupOptions, SetupResult } from './types';
import { readText, str } from './util';

export type { HostsKind, SetupIo, SetupOptions, SetupResult } from './types';

const DEFAULT_USER = 'olvm-backup@internal';
const EXAMPLE_HOST = 'engine.example.com';

/**
 * First-run (and re-run) setup of the backup service: pins the engine CA, checks the service
 * account, pins the KVM hosts' SSH keys, creates the repository and writes the config. Every
 * check runs before anything is written, so a refused CA, login or host key leaves the files as
 * they were; running it again with the same answers changes nothing.
 */
export async function runSetup(o: SetupOptions, io: SetupIo): Promise<SetupResult> {
  const configFile = path.resolve(o.configFile);
  const configDir = path.dirname(configFile);
  const existingText = await readText(configFile);
  const ex = readExisting(existingText);
  const ask = asker(io.prompter);

  // --- the engine --------------------------------------------------------------------------
  const exUrl = str(ex.get('engine.url'));
  const engineUrl = normalizeEngineUrl(
    await ask('engine URL (https://<engine fqdn>/ovirt-engine)', o.engineUrl, exUrl && !exUrl.includes(EXAMPLE_HOST) ? exUrl : undefined, '--engine-url'),
  );
  const engineUser = await ask('service account (user@profile)', o.engineUser, str(ex.get('engine.user')) ?? DEFAULT_USER, '--engine-user');
  const password = await enginePassword(o, ex.get('engine.passwordFile'), io.prompter);

  const backupMethod = o.backupMethod ?? str(ex.get('backup.method')) ?? 'auto';
  if (!(CONFIG_BACKUP_METHODS as readonly string[]).includes(backupMethod)) throw new AppError('INVALID_ARGUMENT', `backup method must be one of ${CONFIG_BACKUP_METHODS.join(', ')} (got ${backupMethod})`);

  const caTarget = path.join(configDir, 'engine-ca.pem');
  const ca = engineUrl.startsWith('https:') ? await decideCa(o, engineUrl, str(ex.get('engine.caFile')), io) : undefined;
  const caFileNow = ca?.kind === 'new' ? await tempCa(ca.ca.pem) : ca?.file;
  let account;
  try {
    account = await checkServiceAccount({ url: engineUrl, user: engineUser, password, caFile: caFileNow, backupMethod });
  } finally {
    if (ca?.kind === 'new' && caFileNow) await fs.rm(path.dirname(caFileNow), { recursive: true, force: true });
  }
  io.say(`engine: ${account.product} at ${engineUrl}, logged in as ${account.userName}`);
  io.say(`permissions: administrative view ok (${account.hosts.length} host${account.hosts.length === 1 ? '' : 's'})`);
  io.say(account.engineMethod ? `permissions: engine backup method ok (${account.engineMethod}; create_disk on System)` : 'permissions: engine backup method not checked (backup.method qmp)');

  // --- how the service reaches QEMU ----------------------------------------------------------
  const exQmpDir = str(ex.get('hosts.qmpDir'));
  const exDirectory = str(ex.get('hosts.directory'));
  let mode: { kind: 'local'; qmpDir: string } | { kind: 'file'; file: string; hostsKind: HostsKind };
  if (o.qmpDir !== undefined) mode = { kind: 'local', qmpDir: path.resolve(o.qmpDir) };
  else if (o.hostsKind !== undefined || exDirectory !== undefined || exQmpDir === undefined) {
    const file = exDirectory ?? path.join(configDir, 'hosts.json');
    const exKind = (await readHostsFile(file)).hosts.find((h) => h.kind !== 'local')?.kind as HostsKind | undefined;
    const hostsKind = o.hostsKind ?? exKind ?? ((await ask('how the service reaches the VMs on the hosts: libvirt (OLVM hosts) or qmp-socket', undefined, 'libvirt', '--hosts-kind')) as HostsKind);
    if (hostsKind !== 'libvirt' && hostsKind !== 'qmp-socket') throw new AppError('INVALID_ARGUMENT', `hosts kind must be libvirt or qmp-socket (got ${String(hostsKind)})`);
    mode = { kind: 'file', file, hostsKind };
  } else mode = { kind: 'local', qmpDir: exQmpDir };

  const hostsPlan = mode.kind === 'file' ? await planHosts(o, mode.file, mode.hostsKind, configDir, account.hosts, io) : undefined;

  // --- paths and listener --------------------------------------------------------------------
  const exDataDir = str(ex.get('dataDir'));
  const dataDir = path.resolve(await ask('data directory', o.dataDir, exDataDir ?? defaultDataDir(), '--data-dir'));
  const sameData = exDataDir !== undefined && path.resolve(exDataDir) === dataDir;
  const keep = (key: string, fallback: string): string => (sameData ? (str(ex.get(key)) ?? fallback) : fallback);
  // a repository on object storage (repository.s3) is kept as configured: no repository.path
  const exS3 = ex.get('repository.s3');
  const onStore = typeof exS3 === 'object' && exS3 !== null && o.repository === undefined;
  const repositoryPath = onStore ? null : path.resolve(o.repository ?? keep('repository.path', path.join(dataDir, 'repository')));
  const listenHost = await ask('listen address', o.listenHost, str(ex.get('listen.host')) ?? '127.0.0.1', '--listen-host');
  const exPort = ex.get('listen.port');
  const listenPort = o.listenPort ?? (typeof exPort === 'number' ? exPort : 8780);
  const settings: ConfigSettings = {
    dataDir,
    engine: { url: engineUrl, user: engineUser, passwordFile: path.join(configDir, 'engine-password'), caFile: ca ? caTarget : undefined },
    repositoryPath,
    catalogPath: path.resolve(keep('catalog.path', path.join(dataDir, 'catalog.sqlite'))),
    scratchPath: path.resolve(keep('scratch.path', path.join(dataDir, 'scratch'))),
    listen: { host: listenHost, port: listenPort },
    corsOrigins: corsOriginsFor(engineUrl, ex.get('cors.origins'), o.corsOrigins),
    hosts: mode.kind === 'local' ? { qmpDir: mode.qmpDir } : { directory: mode.file },
    backupMethod,
  };
  if (ca?.kind === 'existing') settings.engine.caFile = ca.file;
  const newConfigText = applySettings(existingText, settings);

  // --- everything checked: write ---------------------------------------------------------------
  const written: Record<string, WriteResult> = {};
  await ensureDir(configDir, 'config', o.owner);
  if (ca?.kind === 'new') written[caTarget] = await writeFileSafely(caTarget, ca.ca.pem, 'config', o.owner);
  written[settings.engine.passwordFile] = await writeFileSafely(settings.engine.passwordFile, `${password}\n`, 'secret', o.owner);
  if (hostsPlan) {
    // a key of the admin's own is used as it is; only a key made here is written (with its .pub)
    if (hostsPlan.key.create) {
      await ensureDir(path.dirname(hostsPlan.key.file), 'config', o.owner);
      written[hostsPlan.key.file] = await writeFileSafely(hostsPlan.key.file, hostsPlan.key.privateKey, 'secret', o.owner);
      written[`${hostsPlan.key.file}.pub`] = await writeFileSafely(`${hostsPlan.key.file}.pub`, hostsPlan.key.publicKey, 'config', o.owner);
    }
    written[hostsPlan.file] = await writeFileSafely(hostsPlan.file, `${JSON.stringify(hostsPlan.config, null, 2)}\n`, 'config', o.owner);
    // a restricted account's files, to copy to its host (HOSTS.md)
    if (o.hostAccessDir !== undefined) {
      for (const a of hostsPlan.access) {
        if (!a.files) continue;
        for (const [name, text] of hostAccessTexts(a.files)) {
          const f = path.join(path.resolve(o.hostAccessDir), a.address, name);
          written[f] = await writeFileSafely(f, text, 'config', o.owner);
        }
      }
    }
  }
  const repo = repositoryPath === null ? { created: false } : await ensureRepository(dataDir, repositoryPath, o.owner, io);
  const checked = await validateConfig(newConfigText, configDir);
  if (checked.repository.s3) await reportStore(checked.repository.s3, checked.protection.requireObjectLock, io);
  written[configFile] = await writeFileSafely(configFile, newConfigText, 'config', o.owner);
  for (const [file, r] of Object.entries(written)) io.say(`${r === 'unchanged' ? 'kept' : r}: ${file}`);

  const listenUrl = `${settings.listen.host.includes(':') ? `[${settings.listen.host}]` : settings.listen.host}:${listenPort}`;
  for (const line of nextSteps({ engineUrl, listenUrl, hostsPlan, configFile, hostAccessDir: o.hostAccessDir })) io.say(line);
  return {
    configFile,
    written,
    engineUser: account.userName,
    hosts: hostsPlan?.report ?? [],
    repository: { path: checked.repository.path, created: repo.created },
    listenUrl,
  };
}

// --- the engine password ------------------------------------------------------------------

async function enginePassword(o: SetupOptions, exFile: unknown, prompter: Prompter | undefined): Promise<string> {
  if (o.enginePasswordFile !== undefined) {
    const p = (await fs.readFile(o.enginePasswordFile, 'utf8').catch((err: unknown) => {
      throw new AppError('SETUP_INPUT_MISSING', `cannot read the password file ${o.enginePasswordFile}`, { cause: err });
    })).replace(/(\r?\n)+$/, '');
    if (p === '') throw new AppError('SETUP_INPUT_MISSING', `the password file ${o.enginePasswordFile} is empty`);
    return p;
  }
  if (o.enginePassword) return o.enginePassword;
  if (typeof exFile === 'string') {
    const p = await fs.readFile(exFile, 'utf8').then((t) => t.replace(/(\r?\n)+$/, ''), () => '');
    if (p !== '') return p;
  }
  if (prompter) {
    const p = await prompter.ask("the service account's password", { secret: true });
    if (p !== '') return p;
  }
  throw new AppError('SETUP_INPUT_MISSING', 'the engine password is missing: pass --engine-password-file FILE, set OLVM_BACKUP_ENGINE_PASSWORD, or run setup interactively');
}

// --- repository and config -------------------------------------------------------------------

async function ensureRepository(dataDir: string, repoPath: string, owner: ServiceOwner | undefined, io: SetupIo): Promise<{ created: boolean }> {
  await ensureDir(dataDir, 'data', owner);
  const exists = await fs.access(path.join(repoPath, 'config.json')).then(
    () => true,
    () => false,
  );
  if (exists) {
    const r = await Repository.open(repoPath);
    await r.close();
    const st = await fs.stat(repoPath);
    if (owner && st.uid !== owner.uid) io.say(`warning: ${repoPath} belongs to uid ${st.uid}, the service runs as ${owner.user}: chown -R ${owner.user}: ${repoPath}`);
    io.say(`repository: kept ${repoPath}`);
    return { created: false };
  }
  await ensureDir(path.dirname(repoPath), 'data', owner);
  const r = await Repository.init(repoPath);
  await r.close();
  if (owner) await chownTree(repoPath, owner);
  io.say(`repository: created ${repoPath}`);
  return { created: true };
}

async function chownTree(p: string, owner: ServiceOwner): Promise<void> {
  await fs.chown(p, owner.uid, owner.gid);
  const st = await fs.stat(p);
  if (st.isDirectory()) for (const e of await fs.readdir(p)) await chownTree(path.join(p, e), owner);
}

/** The new text must load as the service will load it (files readable, keys valid). */
async function validateConfig(text: string, configDir: string): Promise<ServiceConfig> {
  const tmp = path.join(configDir, `.config-check-${process.pid}.yaml`);
  await fs.writeFile(tmp, text, { mode: 0o600 });
  try {
    // the service's own environment is not setup's; only where S3 credentials may come from is shared
    const s3Env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('AWS_') || k === 'HOME'));
    return await loadConfig({ file: tmp, env: s3Env });
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

function nextSteps(s: { engineUrl: string; listenUrl: string; hostsPlan: HostsPlan | undefined; configFile: string; hostAccessDir: string | undefined }): string[] {
  const lines = ['', 'next steps:'];
  const restricted = new Set(s.hostsPlan?.access.map((a) => a.address) ?? []);
  const refused = s.hostsPlan?.report.filter((h) => h.login !== undefined && h.decision !== 'skip' && !restricted.has(h.address)) ?? [];
  if (s.hostsPlan && refused.length > 0) {
    lines.push(`  - let the service log in to ${refused.map((h) => h.name).join(', ')}: add this line to ~root/.ssh/authorized_keys there:`);
    lines.push(`      ${s.hostsPlan.key.publicKey.trim()}`);
  }
  lines.push(...restrictedAccountSteps(s.hostsPlan, s.hostAccessDir));
  lines.push('  - start the service:  systemctl enable --now olvm-backup   (already running: systemctl restart olvm-backup)');
  lines.push(`  - check it:           curl -s http://${s.listenUrl}/api/v1/health`);
  if (!/^(127\.|localhost|\[::1\])/.test(s.listenUrl)) lines.push('  - open the port:      firewall-cmd --permanent --add-service=olvm-backup && firewall-cmd --reload');
  else lines.push('  - the service listens on loopback only: if the engine is another machine, run setup again with --listen-host <this machine\'s address>');
  const engine = new URL(s.engineUrl);
  lines.push('  - on the engine machine: dnf install olvm-backup-ui-plugin; in /etc/httpd/conf.d/olvm-backup-proxy.conf point');
  lines.push(`    /olvm-backup/ at http://${s.listenUrl}/ and reload httpd; in /etc/ovirt-engine/ui-plugins/olvm-backup-config.json set`);
  lines.push(`    {"config": {"serviceUrl": "${engine.protocol}//${engine.host}/olvm-backup"}}; reload the admin portal (docs/install.md)`);
  return lines;
}

/** For hosts whose restricted account cannot log in or run virsh yet: what to install, hosts with the same texts together. */
function restrictedAccountSteps(plan: HostsPlan | undefined, dir: string | undefined): string[] {
  const groups = new Map<string, { names: string[]; text: string[] }>();
  const unknown: string[] = [];
  for (const a of plan?.access.filter((x) => x.needed) ?? []) {
    if (!a.files) {
      unknown.push(a.name);
      continue;
    }
    const text = formatHostAccess(a.files, a.user);
    const key = text.join('\n');
    const g = groups.get(key) ?? { names: [], text };
    g.names.push(dir !== undefined ? `${a.name} (${path.join(path.resolve(dir), a.address)})` : a.name);
    groups.set(key, g);
  }
  const lines: string[] = [];
  for (const g of groups.values()) {
    lines.push(`  - on ${g.names.join(', ')}: give the service's restricted account what it needs (HOSTS.md explains each part):`);
    for (const l of g.text) lines.push(l === '' ? '' : `      ${l}`);
  }
  if (unknown.length > 0) lines.push(`  - ${unknown.join(', ')}: unreachable now; run setup again (or olvm-backup host-access --from <this server's address>) for the restricted account's files`);
  return lines;
}

// --- small helpers ---------------------------------------------------------------------------

/** A value from a flag, else the answer to a question (default shown), else the default; a missing value is an error naming the flag. */
function asker(prompter: Prompter | undefined) {
  return async (question: string, given: string | undefined, fallback: string | undefined, flag: string): Promise<string> => {
    if (given !== undefined && given !== '') return given;
    if (prompter) {
      const a = await prompter.ask(question, fallback !== undefined ? { default: fallback } : {});
      if (a !== '') return a;
    } else if (fallback !== undefined) return fallback;
    throw new AppError('SETUP_INPUT_MISSING', `${question} is missing: pass ${flag}${prompter ? '' : ' or run setup interactively'}`);
  };
}

function normalizeEngineUrl(raw: string): string {
  const u = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw new AppError('INVALID_ARGUMENT', `the engine URL must look like https://engine.example.com/ovirt-engine (got ${raw})`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/ovirt-engine';
  return u.href.replace(/\/+$/, '');
}

function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/olvm-backup' : path.join(os.homedir(), '.local', 'share', 'olvm-backup');
}

// The restricted account of test/hosts/up.sh, set up as HOSTS.md tells an admin to: what its
// authorized_keys line and sshd_config block refuse (a pty, agent and X11 forwarding, listening
// on the host, a login from another address) while the one forwarding the links use works;
// what sudo refuses (anything but the product's own virsh command lines); and that the lab runs
// exactly the texts the product renders. Root on the same sshd is the control: what is refused
// to the account is allowed to it, so a refusal here is the account's restriction.
import { execFileSync } from 'child_process';
import { promises as fs } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { BaseAgent, Client, type ClientChannel, type ExecOptions } from 'ssh2';
import { AppError } from '../../backend/src/errors';
import { authorizedKeysLine, sshdMatchBlock, SshConnection, SshConnectionPool, SshLibvirtHost, sudoersDropIn } from '../../backend/src/hosts';
import { BlockApi, commandJson, VIRSH_PATH } from '../../backend/src/qmp';
import { publicKeyOf } from '../../backend/src/setup';
import { LibvirtTestVm, sshHostConfig, startHostServices, type HostServices } from '../helpers/hostLab';

jest.setTimeout(120_000);

const MiB = 1 << 20;
let svc: HostServices;
let work: string;

/** An agent with no keys: enough for the client to ask the server to forward one. */
class EmptyAgent extends BaseAgent {
  getIdentities(cb: (err: Error | undefined, keys?: Buffer[]) => void): void {
    cb(undefined, []);
  }
  sign(_key: unknown, _data: Buffer, _opts: unknown, cb?: (err: Error | undefined, sig?: Buffer) => void): void {
    cb?.(new Error('no keys'));
  }
}

/** A raw ssh2 login (not the product's code): every capability is asked for by hand. */
function login(username: string, withAgent = false): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c)).on('error', reject);
    c.connect({
      host: '127.0.0.1',
      port: svc.sshPort,
      username,
      privateKey: svc.clientKey,
      readyTimeout: 10_000,
      hostVerifier: () => true,
      ...(withAgent ? { agent: new EmptyAgent(), agentForward: true } : {}),
    });
  });
}

/** Runs `cmd` with `opts` (pty, agent, X11 asked for); resolves stdout, rejects when a request is refused. */
function exec(c: Client, cmd: string, opts: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer in 10 s')), 10_000);
    c.exec(cmd, opts, (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        clearTimeout(timer);
        reject(err);
        return;
      }
      let out = '';
      ch.on('data', (b: Buffer) => (out += b.toString('utf8')));
      ch.on('close', () => {
        clearTimeout(timer);
        resolve(out.trim());
      });
      ch.end();
    });
  });
}

/** Whether the server lets this login listen on a unix socket of the host (ssh -R). */
function listenUnix(c: Client, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => c.openssh_forwardInStreamLocal(socketPath, (err: Error | null | undefined) => (err ? reject(err) : resolve())));
}

function listenTcp(c: Client): Promise<number> {
  return new Promise((resolve, reject) => c.forwardIn('127.0.0.1', 0, (err: Error | undefined, port: number) => (err ? reject(err) : resolve(port))));
}

/** What a unix socket on the host says first, through a direct-streamlocal channel. */
function readUnix(c: Client, socketPath: string): Promise<string> {
  return new Promise((resolve, reject) =>
    c.openssh_forwardOutStreamLocal(socketPath, (err: Error | undefined, ch: ClientChannel) => {
      if (err) return reject(err);
      ch.once('data', (b: Buffer) => {
        resolve(b.toString('utf8').trim());
        ch.destroy();
      });
    }),
  );
}

beforeAll(async () => {
  svc = startHostServices();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-account-'));
  // the account may traverse this directory (the remote-listen tests try to bind in it)
  await fs.chmod(work, 0o1777);
});

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('the lab runs exactly what the product renders: the key line, the sudoers rule, the sshd block', async () => {
  const pub = publicKeyOf(svc.clientKey, 'x').split(' ').slice(0, 2).join(' ');
  const home = execFileSync('getent', ['passwd', svc.account], { encoding: 'utf8' }).split(':')[5] ?? '';
  const installed = await fs.readFile(path.join(home, '.ssh', 'authorized_keys'), 'utf8');
  const clientPubFile = await fs.readFile(`${svc.clientKeyFile}.pub`, 'utf8');
  expect(clientPubFile.startsWith(pub)).toBe(true);
  expect(installed.split('\n')[0]).toBe(authorizedKeysLine(clientPubFile, ['127.0.0.1']).trimEnd());
  expect(installed.split('\n')[0]).toMatch(/^from="127\.0\.0\.1",restrict,port-forwarding,no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc ssh-ed25519 /);
  expect(await fs.readFile(svc.sudoersFile, 'utf8')).toBe(sudoersDropIn({ user: svc.account }));
  const sshd = await fs.readFile(path.join(path.dirname(svc.clientKeyFile), 'sshd_config'), 'utf8');
  const block = sshdMatchBlock(svc.account)
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
  expect(sshd).toContain(block.join('\n'));
  // both forms of the rule are sudoers syntax (the glob one is for sudo older than 1.9.10)
  for (const syntax of ['regex', 'glob'] as const) {
    const f = path.join(work, `sudoers-${syntax}`);
    await fs.writeFile(f, sudoersDropIn({ user: svc.account, sudoSyntax: syntax, libvirtUri: 'qemu:///system?authfile=/etc/ovirt-hosted-engine/virsh_auth.conf' }));
    expect(execFileSync('visudo', ['-cf', f], { encoding: 'utf8' })).toContain('parsed OK');
  }
});

test('ssh: the account gets no pty, no agent or X11 forwarding and may not listen on the host; root on the same sshd may', async () => {
  const account = await login(svc.account);
  const root = await login('root');
  // a login that offers an agent asks for its forwarding with every command
  const accountWithAgent = await login(svc.account, true);
  const rootWithAgent = await login('root', true);
  try {
    expect(await exec(account, 'id -un')).toBe(svc.account);
    await expect(exec(account, 'tty', { pty: true })).rejects.toThrow(/pseudo-terminal/);
    expect(await exec(root, 'tty', { pty: true })).toMatch(/^\/dev\/pts\//);
    await expect(exec(accountWithAgent, 'echo "$SSH_AUTH_SOCK"')).rejects.toThrow(/agent forwarding/);
    expect(await exec(rootWithAgent, 'echo "$SSH_AUTH_SOCK"')).toMatch(/^\/tmp\/ssh-/);
    await expect(exec(account, 'true', { x11: true })).rejects.toThrow(/X11/);
    // ssh -R: neither a unix socket nor a TCP port on the host (the sshd_config block)
    await expect(listenUnix(account, path.join(work, 'account.sock'))).rejects.toThrow(/bind/);
    await listenUnix(root, path.join(work, 'root.sock'));
    await expect(listenTcp(account)).rejects.toThrow(/bind/);
    expect(await listenTcp(root)).toBeGreaterThan(0);
  } finally {
    for (const c of [account, root, accountWithAgent, rootWithAgent]) c.end();
  }
});

test('ssh: the one forwarding the links use (a unix socket of the host, as for NBD) works for the account', async () => {
  const sock = path.join(work, 'greeter.sock');
  const server = net.createServer((c) => c.end('hello from the host\n'));
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  await fs.chmod(sock, 0o777);
  const account = await login(svc.account);
  try {
    expect(await readUnix(account, sock)).toBe('hello from the host');
  } finally {
    account.end();
    await new Promise((r) => server.close(r));
  }
});

test('from=: a key the account accepts only from another address is refused from here', async () => {
  const conn = new SshConnection(sshHostConfig(svc, svc.account, { privateKey: svc.elsewhereKey }));
  try {
    await expect(conn.connectNow()).rejects.toMatchObject({ code: 'HOST_AUTH_FAILED' });
  } finally {
    conn.closeNow();
  }
  // the same account with the key allowed from here logs in
  const ok = new SshConnection(sshHostConfig(svc, svc.account));
  try {
    await ok.connectNow();
  } finally {
    ok.closeNow();
  }
});

describe('sudo: the product virsh command lines, nothing else', () => {
  let vm: LibvirtTestVm;
  let conn: SshConnection;
  const uri = 'qemu:///system';

  beforeAll(async () => {
    vm = await LibvirtTestVm.create(`olvm-test-account-${process.pid}`, { qcow2: 4 * MiB, raw: MiB });
    conn = new SshConnection(sshHostConfig(svc, svc.account));
  });
  afterAll(async () => {
    conn?.closeNow();
    await vm?.dispose();
  });

  const refused = async (argv: string[]): Promise<void> => {
    const r = await conn.run(argv, { timeoutMs: 30_000 });
    expect({ argv, code: r.code, stderr: r.stderr.trim() }).toEqual({ argv, code: 1, stderr: 'sudo: a password is required' });
  };

  test('arbitrary commands, other virsh commands, other QMP commands, extra virsh options: refused', async () => {
    await refused(['sudo', '-n', '/bin/sh', '-c', 'id']);
    await refused(['sudo', '-n', '/usr/bin/id']);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'destroy', vm.uuid]);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'list', '--all']);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'qemu-monitor-command', '--domain', vm.uuid, '--cmd', commandJson('human-monitor-command', { 'command-line': 'info version' })]);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'qemu-monitor-command', '--domain', vm.uuid, '--hmp', '--cmd', commandJson('query-status')]);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'qemu-monitor-command', '--domain', vm.uuid, '--cmd', '{"execute":"query-status","arguments":{', '--pass-fds', '3', '}}']);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', 'qemu+ssh://elsewhere/system', 'qemu-monitor-command', '--domain', vm.uuid, '--cmd', commandJson('query-status')]);
    await refused(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'qemu-agent-command', vm.uuid, commandJson('guest-exec', { path: '/bin/sh' }), '--timeout', '5']);
    await refused(['sudo', '-n', '/usr/bin/stdbuf', '-oL', '/bin/sh', '-c', 'id']);
    // and without sudo the account cannot reach libvirt at all (not in group libvirt)
    const direct = await conn.run(['virsh', '-q', '-c', uri, 'list', '--all'], { timeoutMs: 30_000 });
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toMatch(/failed to connect|permission denied|authentication/i);
  });

  test('an allowed command line runs as root; the session refuses a QMP command outside the rule before sending it', async () => {
    const r = await conn.run(['sudo', '-n', VIRSH_PATH, '-q', '-c', uri, 'qemu-monitor-command', '--domain', vm.uuid, '--cmd', commandJson('query-status')], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(['prelaunch', 'paused']).toContain((JSON.parse(r.stdout) as { return: { status: string } }).return.status);

    const host = new SshLibvirtHost({ ssh: sshHostConfig(svc, svc.account), pool: new SshConnectionPool() });
    expect(host.sudo).toBe(true);
    const qmp = await host.openQmp({ id: vm.uuid, name: vm.name });
    try {
      expect((await new BlockApi(qmp).listDevices()).map((d) => d.deviceId).sort()).toEqual(vm.disks.map((d) => d.alias).sort());
      let caught: unknown;
      await new BlockApi(qmp).hmp('info version').catch((e: unknown) => (caught = e));
      expect(caught).toBeInstanceOf(AppError);
      expect(caught).toMatchObject({ code: 'HOST_SUDO_REFUSED', details: { reason: 'SUDO_REFUSED' } });
      expect((caught as Error).message).toContain('human-monitor-command');
    } finally {
      await qmp.close();
    }
  });
});

// `olvm-backup host-access`: what a KVM host must grant a restricted (non-root) SSH account of
// the backup service, printed or written as files; `setup` prints the same for the hosts it pins.
import { promises as fs } from 'fs';
import type { Command } from 'commander';
import { AppError } from '../../errors';
import type { SudoSyntax } from '../../hosts';
import { printLine } from '../output';

interface Flags {
  user: string;
  from: string[];
  publicKey?: string;
  sshKey?: string;
  kind: string;
  libvirtUri?: string;
  qemuGroup?: string;
  scratchDir?: string;
  sudoSyntax: string;
  out?: string;
}

export function registerHostAccess(program: Command): void {
  program
    .command('host-access')
    .description("what a KVM host grants the service's restricted SSH account: authorized_keys line, sudoers rule, sshd_config block (HOSTS.md)")
    .requiredOption('--user <name>', 'the account on the host (not root)')
    .requiredOption('--from <address...>', "the backup server's address(es) as the host sees them (from=\"…\")")
    .option('--public-key <file>', "the service's public key file")
    .option('--ssh-key <file>', "the service's private key (its public half is used)")
    .option('--kind <kind>', 'libvirt (virsh through sudo) or qmp-socket', 'libvirt')
    .option('--libvirt-uri <uri>', 'virsh connection URI on the host (default qemu:///system)')
    .option('--qemu-group <group>', 'the group QEMU runs as (qemu on EL/OLVM, libvirt-qemu on Debian): the account joins it')
    .option('--scratch-dir <dir>', "the host's scratch directory (the hosts file's scratchDir)")
    .option('--sudo-syntax <syntax>', 'regex (sudo 1.9.10 or later) or glob (older sudo)', 'regex')
    .option('--out <dir>', 'write the files into this directory instead of printing them')
    .action(async (f: Flags) => {
      if (f.kind !== 'libvirt' && f.kind !== 'qmp-socket') throw new AppError('INVALID_ARGUMENT', `--kind must be libvirt or qmp-socket (got ${f.kind})`);
      const sudoSyntax = parseSudoSyntax(f.sudoSyntax);
      const [{ hostAccessFiles }, { formatHostAccess, writeHostAccess }] = await Promise.all([import('../../hosts'), import('../../setup')]);
      const publicKey = await readKey(f);
      const files = hostAccessFiles({
        user: f.user,
        publicKey,
        from: addressList(f.from),
        kind: f.kind,
        sudoSyntax,
        ...(f.libvirtUri ? { libvirtUri: f.libvirtUri } : {}),
        ...(f.qemuGroup ? { qemuGroup: f.qemuGroup } : {}),
        ...(f.scratchDir ? { scratchDir: f.scratchDir } : {}),
      });
      if (f.out) for (const file of await writeHostAccess(f.out, files)) printLine(`written: ${file}`);
      else for (const line of formatHostAccess(files, f.user)) printLine(line);
    });
}

/** `--sudo-syntax` (here and in setup): the sudoers rule for sudo 1.9.10 or later, or older. */
export function parseSudoSyntax(v: string): SudoSyntax {
  if (v !== 'regex' && v !== 'glob') throw new AppError('INVALID_ARGUMENT', `--sudo-syntax must be regex or glob (got ${v})`);
  return v;
}

/** Addresses given as repeated values, comma-separated lists, or both (`--from`, `--ssh-from`). */
export function addressList(values: readonly string[]): string[] {
  return values.flatMap((a) => a.split(',')).filter((a) => a !== '');
}

async function readKey(f: Flags): Promise<string> {
  const file = f.publicKey ?? f.sshKey;
  if (!file) throw new AppError('INVALID_ARGUMENT', 'give --public-key FILE or --ssh-key FILE');
  const text = await fs.readFile(file, 'utf8').catch((err: unknown) => {
    throw new AppError('INVALID_ARGUMENT', `cannot read ${file}`, { cause: err });
  });
  if (f.publicKey) return text;
  const { publicKeyOf } = await import('../../setup');
  return publicKeyOf(text, 'olvm-backup');
}

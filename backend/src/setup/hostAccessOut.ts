// What setup and `olvm-backup host-access` hand the admin for a restricted account on a KVM
// host: the texts printed in install order, or written as files to copy to the host.
import { promises as fs } from 'fs';
import * as path from 'path';
import type { HostAccessFiles } from '../hosts';

const FILE_NAMES = { authorizedKeys: 'authorized_keys', sudoers: 'sudoers', sshdMatch: 'sshd_config.match', setupCommands: 'create-account.sh' } as const;

/** The steps as the admin runs them on the host (as root), each with its text. */
export function formatHostAccess(files: HostAccessFiles, user: string): string[] {
  const lines = ['# 1. as root on the host: the account (and its scratch directory)', ...files.setupCommands];
  lines.push('', `# 2. ~${user}/.ssh/authorized_keys (mode 0600, owned by ${user}): this one line`, files.authorizedKeys.trimEnd());
  if (files.sudoers) {
    lines.push('', '# 3. /etc/sudoers.d/olvm-backup (check: visudo -cf FILE; install -m 0440). `sudo -V`: 1.9.10 or later;', '#    older sudo (EL8/EL9 ship 1.9.5): the --sudo-syntax glob form', ...files.sudoers.trimEnd().split('\n'));
  }
  lines.push('', `# ${files.sudoers ? 4 : 3}. the end of /etc/ssh/sshd_config`, ...files.sshdMatch.trimEnd().split('\n'));
  return lines;
}

/** Each file's name and text. */
export function hostAccessTexts(files: HostAccessFiles): Array<[string, string]> {
  const out: Array<[string, string]> = [
    [FILE_NAMES.authorizedKeys, files.authorizedKeys],
    [FILE_NAMES.sshdMatch, files.sshdMatch],
    [FILE_NAMES.setupCommands, `#!/bin/sh\n# run as root on the host\nset -e\n${files.setupCommands.join('\n')}\n`],
  ];
  if (files.sudoers) out.push([FILE_NAMES.sudoers, files.sudoers]);
  return out;
}

/** Writes the texts into `dir` (created), one file each; returns the paths written. */
export async function writeHostAccess(dir: string, files: HostAccessFiles): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true, mode: 0o750 });
  const written: string[] = [];
  for (const [name, text] of hostAccessTexts(files)) {
    const file = path.join(dir, name);
    await fs.writeFile(file, text, { mode: 0o644 });
    await fs.chmod(file, 0o644);
    written.push(file);
  }
  return written;
}

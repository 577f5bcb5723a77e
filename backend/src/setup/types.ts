import type { SudoSyntax } from '../hosts';
import type { ServiceOwner, WriteResult } from './files';
import type { PinDecision } from './hostKeyPins';
import type { Prompter } from './prompt';

export type HostsKind = 'libvirt' | 'qmp-socket';

/** Everything setup can be told on the command line; what is missing is asked or kept. */
export interface SetupOptions {
  configFile: string;
  engineUrl?: string;
  engineUser?: string;
  /** a file holding the password; copied to <config dir>/engine-password */
  enginePasswordFile?: string;
  /** from the environment (OLVM_BACKUP_ENGINE_PASSWORD) */
  enginePassword?: string;
  engineCaFile?: string;
  engineCaFingerprint?: string;
  acceptEngineCa?: boolean;
  dataDir?: string;
  repository?: string;
  listenHost?: string;
  listenPort?: number;
  corsOrigins?: string[];
  /** QEMU on this machine: no hosts file */
  qmpDir?: string;
  hostsKind?: HostsKind;
  sshUser?: string;
  /** the backup server's address(es) for a restricted account's from="…" (default: the address each host sees) */
  sshFrom?: string[];
  /** write each restricted account's files (authorized_keys, sudoers, sshd block) into <dir>/<host address>/ */
  hostAccessDir?: string;
  sudoSyntax?: SudoSyntax;
  sshKey?: string;
  sshPort?: number;
  /** qmp-socket hosts: where the VMs' QMP sockets are on the host */
  hostQmpDir?: string;
  libvirtUri?: string;
  qemuOwner?: string;
  hostScratchDir?: string;
  /** address → expected SHA256 fingerprint */
  hostKeys?: Map<string, string>;
  acceptHostKeys?: boolean;
  owner?: ServiceOwner;
  /** config backup.method (auto, qmp, engine); unless qmp, the account's engine-method permits are checked */
  backupMethod?: string;
}

export interface SetupIo {
  say(line: string): void;
  /** undefined: nothing is asked; a missing answer is an error naming the flag */
  prompter?: Prompter;
}

export interface SetupResult {
  configFile: string;
  written: Record<string, WriteResult>;
  engineUser: string;
  hosts: Array<{
    name: string;
    address: string;
    fingerprint: string | undefined;
    decision: PinDecision['kind'];
    note: string;
    login: string | undefined;
    /** a restricted account on a libvirt host: undefined when sudo allows every virsh command line, else why not */
    sudo?: string | undefined;
  }>;
  repository: { path: string; created: boolean };
  listenUrl: string;
}

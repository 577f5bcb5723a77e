/** QEMU's monitor (QMP, no third-party library): connection, the typed command catalog, the
 *  block-layer API, block jobs, the guest agent. */
export { QmpClient, qmpErrorClass, waitForEvent } from './client';
export type { QmpConnectOptions, QmpGreeting } from './client';
export type { QmpSession, QmpCallOptions } from './session';
export type { WirePciDevice } from './commands';
export type { QmpEvent, QmpEventListener } from './events';
export { BlockJob } from './blockJob';
export type { JobOutcome } from './blockJob';
export { BlockApi, deviceIdFromQdev, overlayFileNode } from './blockApi';
export type { BlockAction, BlockDevice, DirtyBitmap, BitmapSource } from './blockApi';
export { VirshSession } from './virshSession';
export type { RemoteCommandRunner, RemoteCommandResult, VirshSessionOptions } from './virshSession';
export { GuestAgentClient } from './guestAgent';
export type { GuestAgent, QgaCallOptions } from './guestAgent';
export { VirshGuestAgent } from './virshGuestAgent';
export {
  agentCommandArgv,
  commandJson,
  DEFAULT_LIBVIRT_URI,
  eventListenerArgv,
  monitorCommandArgv,
  STDBUF_PATH,
  SUDO_DOMAIN_PATTERN,
  sudoAdmitsDomain,
  sudoListArgv,
  VIRSH_PATH,
  VIRSH_QGA_COMMANDS,
  VIRSH_QMP_COMMANDS,
  virshArgv,
} from './virshCommand';
export type { VirshAccess } from './virshCommand';

/**
 * English texts of what a user may not do, and why: one sentence per reason, naming the engine
 * permit (and the predefined roles that carry it) or the backup-admin rule the service checks
 * (README, "Who may do what"). Buttons show them as their tooltip, form fields under themselves.
 */
export const access = {
  deniedBackup: 'You need the backup_disk permit on {vm} (UserVmManager or DiskOperator role) to back it up.',
  deniedVerify: 'You need the backup_disk permit on {vm} (UserVmManager or DiskOperator role) to verify its restore points.',
  deniedDownload: 'You need the backup_disk and edit_disk_properties permits on {vm} (UserVmManager or DiskOperator role) to download its disks.',
  deniedBootCheck: 'You need the backup_disk and edit_disk_properties permits on {vm} (UserVmManager or DiskOperator role) to test-boot its restore points: a boot check reads their disks and shows their screen.',
  deniedRestoreInto: 'You need the configure_vm_storage permit on {vm} (UserVmManager role) to attach restored disks to it.',
  deniedCreateVm: 'You need the create_vm permit on a cluster (PowerUserRole or VmCreator role) to restore a VM.',
  deniedCreateDisk: 'You need the create_disk permit on a storage domain (DiskCreator or PowerUserRole role) to restore disks.',
  deniedCancelOwn: 'You need the backup_disk permit on {vm} (UserVmManager or DiskOperator role) to cancel this job.',
  deniedCancelOthers: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may cancel a job {user} started.',
  deniedCancelRepository: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may cancel a verify of the whole repository.',
  deniedVerifyRepository: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may verify the whole repository.',
  deniedOriginalIds: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may restore a VM under its original ids.',
  deniedPolicySelection: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may select VMs by engine tag or search: choose the VMs.',
  deniedPolicyRetention: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may set retention rules that delete restore points: all zero keeps every point.',
  deniedPolicyLock: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may give a policy a retention lock of its own.',
  deniedPolicyManage: 'Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may change, run or delete this policy: it selects VMs by tag or search, deletes restore points or sets a lock of its own.',
  deniedPolicyVm: 'You need the backup_disk permit on {vm} (UserVmManager or DiskOperator role) to put it in a policy, or to change, run or delete a policy of it.',
  deniedPolicyCreate: 'You need the backup_disk permit on at least one VM (UserVmManager or DiskOperator role) to create a policy.',
  deniedAudit: "Only a backup admin (an engine SuperUser, or a user or group named in auth.backupAdmins) may read the audit log: it lists every VM's deletions, unlocks and restores and every user's policy changes.",
} as const;

import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AppError } from '../errors';
import { DISK_INTERFACES, type DiskFormat, type DiskInterface } from './types';

/**
 * Reads the oVirt-flavoured OVF the engine returns with all_content=true (reference §3.1, §7.2;
 * written by the engine's OvfOvirtWriter / OvfVmWriter) into what a restore needs. Layout:
 * `References/File` (ovf:href = `<disk id>/<image id>`, ovf:id = image id, ovf:size = actual
 * bytes), a DiskSection_Type `Section` of `Disk` elements (ovf:diskId = IMAGE id, sizes in whole
 * GiB rounded down), and `Content` holding Name/Description/ClusterName, the OS section (whose
 * ovf:id is the VM id) and the VirtualHardwareSection_Type `Item`s (rasd:ResourceType 3 = CPU,
 * 4 = memory in MB, 17 = disk image, 10 = NIC). Namespace prefixes are ignored.
 */
export interface OvfSummary {
  /** Engine version that wrote it (ovf:version). */
  ovfVersion: string | undefined;
  vmId: string;
  name: string;
  description: string;
  comment: string;
  clusterName: string | undefined;
  clusterCompatibilityVersion: string | undefined;
  templateId: string | undefined;
  templateName: string | undefined;
  creationDate: Date | undefined;
  memoryMb: number;
  maxMemoryMb: number | undefined;
  cpu: { count: number; sockets: number; coresPerSocket: number; threadsPerCore: number };
  /** Unique OS name, e.g. rhel_8x64. */
  osType: string | undefined;
  disks: OvfDisk[];
  nics: OvfNic[];
}

export interface OvfDisk {
  diskId: string;
  /** Active volume id; absent for direct LUNs. */
  imageId: string | undefined;
  /** `<disk id>/<image id>` */
  fileRef: string;
  storageDomainId: string | undefined;
  /** Virtual size in GiB, rounded down by the engine: restore with the engine's provisioned
   *  size captured at backup time when it is known. */
  sizeGiB: number | undefined;
  actualSizeGiB: number | undefined;
  /** From References/File ovf:size: allocated bytes. */
  actualSizeBytes: number | undefined;
  format: DiskFormat | undefined;
  sparse: boolean | undefined;
  alias: string | undefined;
  description: string | undefined;
  boot: boolean;
  /** The API's name for it (virtio_scsi, virtio, ide, sata, spapr_vscsi). */
  interface: DiskInterface | undefined;
  readOnly: boolean;
  shareable: boolean;
  passDiscard: boolean;
  wipeAfterDelete: boolean;
  incrementalBackup: boolean | undefined;
  lunId: string | undefined;
  /** libvirt device alias, normally `ua-<disk id>`. */
  deviceAlias: string | undefined;
  plugged: boolean | undefined;
}

export interface OvfNic {
  id: string | undefined;
  name: string;
  mac: string | undefined;
  network: string | undefined;
  vnicProfile: string | undefined;
  /** rasd:ResourceSubType mapped to the API's NIC interface name when known. */
  interface: string | undefined;
  linked: boolean | undefined;
  plugged: boolean | undefined;
  deviceAlias: string | undefined;
}

type Node = Record<string, unknown>;

const ARRAYS = new Set(['File', 'Disk', 'Item', 'Section', 'Network', 'Snapshot', 'Nic']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => ARRAYS.has(name),
});

/** VmInterfaceType values the engine writes into rasd:ResourceSubType. */
const NIC_TYPES: Record<string, string> = {
  '0': 'rtl8139_virtio',
  '1': 'rtl8139',
  '2': 'e1000',
  '3': 'virtio',
  '4': 'spapr_vlan',
  '5': 'pci_passthrough',
};

const RESOURCE = { cpu: '3', memory: '4', network: '10', disk: '17' } as const;

export function parseOvf(xml: string): OvfSummary {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new AppError('OVF_INVALID', `ovf is not well-formed xml - ${valid.err.msg} (line ${valid.err.line})`);
  }
  const envelope = child(parser.parse(xml) as Node, 'Envelope');
  if (!envelope) throw new AppError('OVF_INVALID', 'ovf has no Envelope element');
  const content = child(envelope, 'Content') ?? child(envelope, 'VirtualSystem');
  if (!content) throw new AppError('OVF_INVALID', 'ovf has no Content (virtual system) element');
  const sections = [...list(envelope, 'Section'), ...list(content, 'Section')];
  const os = sectionOf(sections, 'OperatingSystemSection_Type') ?? child(content, 'OperatingSystemSection');
  const hardware = sectionOf(sections, 'VirtualHardwareSection_Type') ?? child(content, 'VirtualHardwareSection');
  const diskSection = sectionOf(sections, 'DiskSection_Type') ?? child(envelope, 'DiskSection');
  const items = hardware ? list(hardware, 'Item') : [];

  const vmId = attr(os, 'id') ?? attr(content, 'id');
  const name = text(content, 'Name');
  if (!vmId || vmId === 'out') throw new AppError('OVF_INVALID', 'ovf has no vm id (OperatingSystemSection ovf:id)');
  if (!name) throw new AppError('OVF_INVALID', `ovf of vm ${vmId} has no Name`);
  const cpuItem = items.find((i) => text(i, 'ResourceType') === RESOURCE.cpu);
  const memItem = items.find((i) => text(i, 'ResourceType') === RESOURCE.memory);
  const memoryMb = int(text(memItem, 'VirtualQuantity'));
  const cpuCount = int(text(cpuItem, 'VirtualQuantity'));
  if (memoryMb === undefined) throw new AppError('OVF_INVALID', `ovf of vm ${name} has no memory item`);
  if (cpuCount === undefined) throw new AppError('OVF_INVALID', `ovf of vm ${name} has no cpu item`);

  const files = new Map(list(child(envelope, 'References'), 'File').map((f) => [attr(f, 'id') ?? '', f]));
  return {
    ovfVersion: attr(envelope, 'version'),
    vmId,
    name,
    description: text(content, 'Description') ?? '',
    comment: text(content, 'Comment') ?? '',
    clusterName: text(content, 'ClusterName') || undefined,
    clusterCompatibilityVersion: text(content, 'ClusterCompatibilityVersion') || undefined,
    templateId: text(content, 'TemplateId') || undefined,
    templateName: text(content, 'TemplateName') || undefined,
    creationDate: ovfDate(text(content, 'CreationDate')),
    memoryMb,
    maxMemoryMb: int(text(content, 'MaxMemorySizeMb')),
    cpu: {
      count: cpuCount,
      sockets: int(text(cpuItem, 'num_of_sockets')) ?? cpuCount,
      coresPerSocket: int(text(cpuItem, 'cpu_per_socket')) ?? 1,
      threadsPerCore: int(text(cpuItem, 'threads_per_cpu')) ?? 1,
    },
    osType: text(os, 'Description') || undefined,
    disks: list(diskSection, 'Disk').map((d) => readDisk(d, files, items, name)),
    nics: items.filter((i) => text(i, 'ResourceType') === RESOURCE.network).map(readNic),
  };
}

function readDisk(d: Node, files: Map<string, Node>, items: Node[], vmName: string): OvfDisk {
  const volumeId = attr(d, 'diskId');
  const lunId = attr(d, 'lun_id');
  const fileRef = attr(d, 'fileRef') ?? '';
  const [refDisk, refImage] = fileRef.split('/');
  if (!volumeId || (!refDisk && !lunId)) throw new AppError('OVF_INVALID', `ovf of vm ${vmName} has a disk without ovf:diskId/ovf:fileRef`);
  const imageId = lunId ? undefined : volumeId;
  const diskId = lunId ? volumeId : refDisk || volumeId;
  if (imageId && refImage && refImage !== imageId) {
    throw new AppError('OVF_INVALID', `ovf of vm ${vmName}: disk ${fileRef} names image ${refImage} but ovf:diskId ${imageId}`);
  }
  const file = files.get(volumeId);
  const item = items.find((i) => text(i, 'ResourceType') === RESOURCE.disk && text(i, 'InstanceId') === volumeId);
  const volumeFormat = attr(d, 'volume-format')?.toLowerCase();
  if (volumeFormat !== undefined && volumeFormat !== 'cow' && volumeFormat !== 'raw') {
    throw new AppError('OVF_INVALID', `ovf of vm ${vmName}: disk ${diskId} has volume format ${volumeFormat}`);
  }
  const iface = attr(d, 'disk-interface')?.toLowerCase();
  const volumeType = attr(d, 'volume-type')?.toLowerCase();
  return {
    diskId,
    imageId,
    fileRef,
    storageDomainId: text(item, 'StorageId') || undefined,
    sizeGiB: int(attr(d, 'size')),
    actualSizeGiB: int(attr(d, 'actual_size')),
    actualSizeBytes: int(attr(file, 'size')),
    format: volumeFormat,
    sparse: volumeType === 'sparse' ? true : volumeType === 'preallocated' ? false : undefined,
    alias: attr(d, 'disk-alias') ?? (text(item, 'Caption') || undefined),
    description: attr(d, 'disk-description') ?? attr(file, 'description'),
    boot: bool(attr(d, 'boot')) ?? false,
    interface: DISK_INTERFACES.find((i) => i === iface),
    readOnly: bool(attr(d, 'read-only')) ?? false,
    shareable: bool(attr(d, 'shareable')) ?? false,
    passDiscard: bool(attr(d, 'pass-discard')) ?? false,
    wipeAfterDelete: bool(attr(d, 'wipe-after-delete')) ?? false,
    incrementalBackup: bool(attr(d, 'incremental-backup')),
    lunId,
    deviceAlias: text(item, 'Alias') || undefined,
    plugged: bool(text(item, 'IsPlugged') ?? attr(d, 'plugged')),
  };
}

function readNic(i: Node): OvfNic {
  const subType = text(i, 'ResourceSubType') ?? '';
  return {
    id: text(i, 'InstanceId') || undefined,
    name: text(i, 'Name') ?? text(i, 'ElementName') ?? '',
    mac: text(i, 'MACAddress') || undefined,
    network: text(i, 'Connection') || undefined,
    vnicProfile: text(i, 'OtherResourceType') || undefined,
    interface: NIC_TYPES[subType] ?? (subType || undefined),
    linked: bool(text(i, 'Linked')),
    plugged: bool(text(i, 'IsPlugged')),
    deviceAlias: text(i, 'Alias') || undefined,
  };
}

function child(n: Node | undefined, key: string): Node | undefined {
  const v = n?.[key];
  const one = Array.isArray(v) ? (v[0] as unknown) : v;
  return typeof one === 'object' && one !== null ? (one as Node) : undefined;
}

function list(n: Node | undefined, key: string): Node[] {
  const v = n?.[key];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is Node => typeof x === 'object' && x !== null);
}

function sectionOf(sections: Node[], type: string): Node | undefined {
  return sections.find((s) => (attr(s, 'type') ?? '').split(':').pop() === type);
}

function attr(n: Node | undefined, name: string): string | undefined {
  const v = n?.[`@_${name}`];
  return typeof v === 'string' ? v : undefined;
}

function text(n: Node | undefined, key: string): string | undefined {
  const v = n?.[key];
  const one: unknown = Array.isArray(v) ? v[0] : v;
  if (typeof one === 'string') return one;
  if (typeof one === 'number') return String(one);
  if (typeof one === 'object' && one !== null) {
    const t = (one as Node)['#text'];
    return typeof t === 'string' ? t : typeof t === 'number' ? String(t) : '';
  }
  return undefined;
}

function int(s: string | undefined): number | undefined {
  if (s === undefined || !/^\s*-?\d+\s*$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

function bool(s: string | undefined): boolean | undefined {
  if (s === undefined) return undefined;
  const v = s.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

/** OvfParser.localDateToUtcDateString: `yyyy/MM/dd HH:mm:ss` in UTC. */
function ovfDate(s: string | undefined): Date | undefined {
  const m = s ? /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s.trim()) : null;
  if (!m) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

import { XMLParser } from 'fast-xml-parser';
import { BLANK_TEMPLATE_ID, type SimDiskRecord, type SimState, type SimVmRecord } from './state';

/**
 * The oVirt-flavoured OVF the engine returns in `initialization.configuration.data` with
 * all_content=true (reference §3.1, §7.2), shaped like OvfOvirtWriter's output: References
 * `File ovf:href="<disk id>/<image id>"`, DiskSection `Disk ovf:diskId=<image id>` with the
 * volume format/type, interface, alias and incremental-backup flags, Content ovf:id="out" with
 * the VM id on the OperatingSystemSection, and a VirtualHardwareSection with CPU, memory, disk
 * (ResourceType 17, HostResource <disk id>/<image id>, StorageId) and NIC (ResourceType 10,
 * MACAddress, Connection, OtherResourceType = vNIC profile) items.
 */

const GiB = 1024 ** 3;
const INTERFACES: Record<string, string> = { virtio: 'VirtIO', virtio_scsi: 'VirtIO_SCSI', sata: 'SATA', ide: 'IDE' };

export function vmOvf(state: SimState, vm: SimVmRecord): string {
  const d = state.data;
  const disks = vm.attachments
    .map((a) => ({ a, disk: state.disk(a.diskId) }))
    .filter((x): x is { a: (typeof vm.attachments)[number]; disk: SimDiskRecord } => x.disk !== undefined);
  const date = (ms: number): string => {
    const t = new Date(ms);
    const p = (n: number): string => String(n).padStart(2, '0');
    return `${t.getUTCFullYear()}/${p(t.getUTCMonth() + 1)}/${p(t.getUTCDate())} ${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}`;
  };
  // the engine's OVF writer uses bytesToGigabyte: whole GiB, rounded down (0 for small disks)
  const gib = (bytes: number): string => String(Math.floor(bytes / GiB));
  const files = disks
    .map(({ disk }) => `<File ovf:href="${disk.id}/${disk.imageId}" ovf:id="${disk.imageId}" ovf:size="${disk.provisionedSize}" ovf:description="${x(disk.description)}" ovf:disk_storage_type="IMAGE" ovf:cinder_volume_type=""/>`)
    .join('');
  const diskSection = disks
    .map(
      ({ a, disk }) =>
        `<Disk ovf:diskId="${disk.imageId}" ovf:size="${gib(disk.provisionedSize)}" ovf:actual_size="${gib(disk.provisionedSize)}" ovf:vm_snapshot_id="${vm.id}" ovf:parentRef="" ovf:fileRef="${disk.id}/${disk.imageId}" ovf:format="http://www.vmware.com/specifications/vmdk.html#sparse" ovf:volume-format="${disk.format === 'cow' ? 'COW' : 'RAW'}" ovf:volume-type="${disk.sparse ? 'Sparse' : 'Preallocated'}" ovf:disk-interface="${INTERFACES[a.interface] ?? 'VirtIO'}" ovf:read-only="${a.readOnly}" ovf:shareable="false" ovf:boot="${a.bootable}" ovf:pass-discard="${a.passDiscard}" ovf:incremental-backup="${disk.backup === 'incremental'}" ovf:disk-alias="${x(disk.alias)}" ovf:disk-description="${x(disk.description)}" ovf:wipe-after-delete="false" ovf:disk_storage_type="IMAGE" ovf:cinder_volume_type="" ovf:disk-content-type="DATA"/>`,
    )
    .join('');
  const diskItems = disks
    .map(
      ({ a, disk }, i) =>
        `<Item><rasd:Caption>${x(disk.alias)}</rasd:Caption><rasd:InstanceId>${disk.imageId}</rasd:InstanceId><rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>${disk.id}/${disk.imageId}</rasd:HostResource><rasd:Parent>00000000-0000-0000-0000-000000000000</rasd:Parent><rasd:Template>00000000-0000-0000-0000-000000000000</rasd:Template><rasd:ApplicationList></rasd:ApplicationList><rasd:StorageId>${disk.storageDomainId}</rasd:StorageId><rasd:StoragePoolId>${d.dataCenterId}</rasd:StoragePoolId><rasd:CreationDate>${date(disk.creationTime)}</rasd:CreationDate><rasd:LastModified>${date(disk.creationTime)}</rasd:LastModified><rasd:last_modified_date>${date(disk.creationTime)}</rasd:last_modified_date><Type>disk</Type><Device>disk</Device><rasd:Address></rasd:Address><BootOrder>${a.bootable ? i + 1 : 0}</BootOrder><IsPlugged>${a.active}</IsPlugged><IsReadOnly>${a.readOnly}</IsReadOnly><Alias>ua-${disk.id}</Alias></Item>`,
    )
    .join('');
  const nicItems = vm.nics
    .map(
      (n) =>
        `<Item><rasd:Caption>Ethernet adapter on ovirtmgmt</rasd:Caption><rasd:InstanceId>${n.id}</rasd:InstanceId><rasd:ResourceType>10</rasd:ResourceType><rasd:OtherResourceType>ovirtmgmt</rasd:OtherResourceType><rasd:ResourceSubType>${n.interface === 'virtio' ? 3 : n.interface === 'e1000' ? 2 : 1}</rasd:ResourceSubType><Type>interface</Type><rasd:Connection>ovirtmgmt</rasd:Connection><rasd:Linked>${n.linked}</rasd:Linked><rasd:Name>${x(n.name)}</rasd:Name><rasd:ElementName>${x(n.name)}</rasd:ElementName><rasd:MACAddress>${n.mac}</rasd:MACAddress><rasd:speed>10000</rasd:speed><Device>bridge</Device><rasd:Address></rasd:Address><BootOrder>0</BootOrder><IsPlugged>${n.plugged}</IsPlugged><IsReadOnly>false</IsReadOnly><Alias>ua-${n.id}</Alias></Item>`,
    )
    .join('');
  const memMiB = Math.round(vm.memory / (1024 * 1024));
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<ovf:Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1/" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="4.5.0.0">` +
    `<References>${files}</References>` +
    `<Section xsi:type="ovf:NetworkSection_Type"><Info>List of networks</Info><Network ovf:name="ovirtmgmt"></Network></Section>` +
    `<Section xsi:type="ovf:DiskSection_Type"><Info>List of Virtual Disks</Info>${diskSection}</Section>` +
    `<Content ovf:id="out" xsi:type="ovf:VirtualSystem_Type">` +
    `<Name>${x(vm.name)}</Name><Description>${x(vm.description)}</Description><Comment>${x(vm.comment)}</Comment>` +
    `<CreationDate>${date(vm.creationTime)}</CreationDate><ExportDate>${date(Date.now())}</ExportDate>` +
    `<DeleteProtected>false</DeleteProtected><SsoMethod>guest_agent</SsoMethod><IsSmartcardEnabled>false</IsSmartcardEnabled>` +
    `<NumOfIoThreads>0</NumOfIoThreads><TimeZone>Etc/GMT</TimeZone><default_boot_sequence>0</default_boot_sequence>` +
    `<Generation>1</Generation><ClusterCompatibilityVersion>${d.clusterVersion}</ClusterCompatibilityVersion><VmType>1</VmType>` +
    `<ResumeBehavior>AUTO_RESUME</ResumeBehavior><MinAllocatedMem>${memMiB}</MinAllocatedMem><IsStateless>false</IsStateless>` +
    `<IsRunAndPause>false</IsRunAndPause><AutoStartup>false</AutoStartup><Priority>1</Priority><CreatedByUserId>${d.users[0]?.id ?? ''}</CreatedByUserId>` +
    `<MigrationSupport>0</MigrationSupport><IsBootMenuEnabled>false</IsBootMenuEnabled><IsSpiceFileTransferEnabled>true</IsSpiceFileTransferEnabled>` +
    `<IsSpiceCopyPasteEnabled>true</IsSpiceCopyPasteEnabled><AllowConsoleReconnect>false</AllowConsoleReconnect><CustomEmulatedMachine></CustomEmulatedMachine>` +
    `<BiosType>2</BiosType><CustomCpuName></CustomCpuName><PredefinedProperties></PredefinedProperties><UserDefinedProperties></UserDefinedProperties>` +
    `<MaxMemorySizeMb>${memMiB * 4}</MaxMemorySizeMb><MultiQueuesEnabled>true</MultiQueuesEnabled><UseHostCpu>false</UseHostCpu>` +
    `<ClusterName>Default</ClusterName><TemplateId>${BLANK_TEMPLATE_ID}</TemplateId><TemplateName>Blank</TemplateName>` +
    `<IsInitilized>true</IsInitilized><Origin>3</Origin><quota_id></quota_id><DefaultDisplayType>2</DefaultDisplayType>` +
    `<TrustedService>false</TrustedService><OriginalTemplateId>${BLANK_TEMPLATE_ID}</OriginalTemplateId><OriginalTemplateName>Blank</OriginalTemplateName>` +
    `<UseLatestVersion>false</UseLatestVersion>` +
    `<Section ovf:id="${vm.id}" ovf:required="false" xsi:type="ovf:OperatingSystemSection_Type"><Info>Guest Operating System</Info><Description>${x(vm.osType)}</Description></Section>` +
    `<Section xsi:type="ovf:VirtualHardwareSection_Type"><Info>${vm.sockets} CPU, ${memMiB} Memory</Info>` +
    `<System><vssd:VirtualSystemType>ENGINE 4.5.0.0</vssd:VirtualSystemType></System>` +
    `<Item><rasd:Caption>${vm.sockets} virtual cpu</rasd:Caption><rasd:Description>Number of virtual CPU</rasd:Description><rasd:InstanceId>1</rasd:InstanceId><rasd:ResourceType>3</rasd:ResourceType><rasd:num_of_sockets>${vm.sockets}</rasd:num_of_sockets><rasd:cpu_per_socket>1</rasd:cpu_per_socket><rasd:threads_per_cpu>1</rasd:threads_per_cpu><rasd:max_num_of_vcpus>${vm.sockets * 16}</rasd:max_num_of_vcpus><rasd:VirtualQuantity>${vm.sockets}</rasd:VirtualQuantity></Item>` +
    `<Item><rasd:Caption>${memMiB} MB of memory</rasd:Caption><rasd:Description>Memory Size</rasd:Description><rasd:InstanceId>2</rasd:InstanceId><rasd:ResourceType>4</rasd:ResourceType><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:VirtualQuantity>${memMiB}</rasd:VirtualQuantity></Item>` +
    diskItems +
    nicItems +
    `</Section></Content></ovf:Envelope>`
  );
}

function x(t: string): string {
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// ---- reading (POST /vms from a configuration) ---------------------------------------------------

export interface ParsedOvf {
  vmId?: string;
  name?: string;
  description: string;
  comment: string;
  memoryMiB?: number;
  sockets?: number;
  osType?: string;
  disks: Array<{ diskId: string; imageId: string; interface: string; bootable: boolean; readOnly: boolean; passDiscard: boolean; plugged: boolean }>;
  nics: Array<{ name: string; mac?: string; interface: string; linked: boolean; plugged: boolean }>;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, parseAttributeValue: false, textNodeName: '#text' });

type Node = Record<string, unknown>;
const arr = (v: unknown): Node[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((n): n is Node => typeof n === 'object' && n !== null);
const text = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && '#text' in v) return String((v as Node)['#text']);
  return undefined;
};

/** Throws on XML that is not an oVirt OVF envelope. */
export function parseOvf(xml: string): ParsedOvf {
  const doc = parser.parse(xml) as Node;
  const env = doc['ovf:Envelope'] as Node | undefined;
  if (!env || typeof env !== 'object') throw new Error('not an OVF envelope (no ovf:Envelope)');
  const sections = arr(env['Section']);
  const content = arr(env['Content'])[0];
  if (!content) throw new Error('OVF has no Content');
  const inner = arr(content['Section']);
  const os = inner.find((s) => String(s['@xsi:type']).includes('OperatingSystemSection'));
  const hw = inner.find((s) => String(s['@xsi:type']).includes('VirtualHardwareSection'));
  const items = arr(hw?.['Item']);
  const diskSection = sections.find((s) => String(s['@xsi:type']).includes('DiskSection'));
  const byImage = new Map(arr(diskSection?.['Disk']).map((dk) => [String(dk['@ovf:diskId']), dk]));
  const out: ParsedOvf = {
    vmId: os ? String(os['@ovf:id']) : undefined,
    name: text(content['Name']),
    description: text(content['Description']) ?? '',
    comment: text(content['Comment']) ?? '',
    osType: text(os?.['Description']),
    disks: [],
    nics: [],
  };
  for (const it of items) {
    const type = text(it['rasd:ResourceType']);
    if (type === '4') out.memoryMiB = Number(text(it['rasd:VirtualQuantity']));
    if (type === '3') out.sockets = Number(text(it['rasd:num_of_sockets']) ?? text(it['rasd:VirtualQuantity']));
    if (type === '17') {
      const [diskId, imageId] = (text(it['rasd:HostResource']) ?? '').split('/');
      if (!diskId || !imageId) continue;
      const dk = byImage.get(imageId);
      const iface = text(dk?.['@ovf:disk-interface']) ?? 'VirtIO';
      out.disks.push({
        diskId,
        imageId,
        interface: Object.entries(INTERFACES).find(([, v]) => v === iface)?.[0] ?? 'virtio',
        bootable: String(dk?.['@ovf:boot']) === 'true',
        readOnly: String(dk?.['@ovf:read-only']) === 'true',
        passDiscard: String(dk?.['@ovf:pass-discard']) === 'true',
        plugged: text(it['IsPlugged']) !== 'false',
      });
    }
    if (type === '10') {
      const sub = text(it['rasd:ResourceSubType']);
      out.nics.push({
        name: text(it['rasd:Name']) ?? text(it['rasd:ElementName']) ?? 'nic',
        mac: text(it['rasd:MACAddress']) || undefined,
        interface: sub === '3' ? 'virtio' : sub === '2' ? 'e1000' : 'rtl8139',
        linked: text(it['rasd:Linked']) !== 'false',
        plugged: text(it['IsPlugged']) !== 'false',
      });
    }
  }
  return out;
}

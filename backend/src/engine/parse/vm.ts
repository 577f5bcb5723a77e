import type { Vm } from '../types';
import { VM_STATUSES } from '../types';
import { parseDiskAttachment } from './disk';
import { Fields, listOf, type Json } from './fields';
import { parseNic } from './nic';
import { parseTag } from './tag';

/** `vm` (reference §2 example, §3.1); followed links are parsed when inlined. */
export function parseVm(o: Json): Vm {
  const f = new Fields('vm', o);
  const cpu = f.sub('cpu');
  const topology = cpu?.sub('topology');
  const os = f.sub('os');
  const bootDevices = os?.sub('boot')?.sub('devices')?.obj.device;
  const configuration = f.sub('initialization')?.sub('configuration');
  const configData = configuration?.str('data');
  return {
    id: f.reqStr('id'),
    name: f.reqStr('name'),
    description: f.str('description') ?? '',
    comment: f.str('comment') ?? '',
    status: f.enumOf('status', VM_STATUSES, 'unknown') ?? 'unknown',
    statusDetail: f.str('status_detail'),
    stopReason: f.str('stop_reason'),
    type: f.str('type'),
    memoryBytes: f.int64('memory'),
    cpu: topology
      ? {
          sockets: topology.int('sockets') ?? 1,
          cores: topology.int('cores') ?? 1,
          threads: topology.int('threads') ?? 1,
          architecture: cpu?.str('architecture'),
        }
      : undefined,
    osType: os?.str('type'),
    bootDevices: (Array.isArray(bootDevices) ? bootDevices : bootDevices === undefined ? [] : [bootDevices]).map(String),
    stateless: f.bool('stateless'),
    creationTime: f.date('creation_time'),
    startTime: f.date('start_time'),
    stopTime: f.date('stop_time'),
    clusterId: f.refId('cluster'),
    hostId: f.refId('host'),
    templateId: f.refId('template'),
    originalTemplateId: f.refId('original_template'),
    customProperties: (f.nestedList('custom_properties', 'custom_property') ?? []).map((p) => {
      const pf = new Fields(`${f.label} custom property`, p);
      return { name: pf.reqStr('name'), value: pf.str('value') ?? '' };
    }),
    nextRunConfigurationExists: f.bool('next_run_configuration_exists'),
    hasIllegalImages: f.bool('has_illegal_images'),
    configuration: configData !== undefined ? { type: configuration?.str('type') ?? 'ovf', data: configData } : undefined,
    diskAttachments: f.nestedList('disk_attachments', 'disk_attachment')?.map(parseDiskAttachment),
    nics: f.nestedList('nics', 'nic')?.map(parseNic),
    tags: f.nestedList('tags', 'tag')?.map(parseTag),
  };
}

export function parseVms(body: unknown): Vm[] {
  return listOf(body, 'vm', 'vm list').map(parseVm);
}

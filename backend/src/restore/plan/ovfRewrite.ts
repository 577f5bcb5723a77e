import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { AppError } from '../../errors';

export interface OvfDiskRewrite {
  /** Disk and image ids as the stored OVF has them. */
  fromDiskId: string;
  fromImageId: string;
  toDiskId: string;
  toImageId: string;
  storageDomainId: string;
  alias: string;
}

export interface OvfRewrite {
  name: string;
  description?: string;
  /** Disks to keep, with their new ids; every other image disk of the OVF is dropped. */
  disks: OvfDiskRewrite[];
  /** Empty every NIC's MAC so the engine takes new ones from the pool. */
  clearMacs: boolean;
}

type XNode = Record<string, unknown>;

const OPTS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
} as const;

/**
 * The stored OVF made fit for a new VM beside the original (reference §7.2): the engine attaches
 * the disks the OVF names, by id, so the ids must be those of the disks just created; disks left
 * out must not be named at all; the name must be free; MACs may be cleared. Edited as a tree
 * (document order, namespaces and every other element kept as they were).
 */
export function rewriteOvf(xml: string, r: OvfRewrite): string {
  const doc = new XMLParser(OPTS).parse(xml) as XNode[];
  const envelope = doc.find((n) => tagOf(n) === 'ovf:Envelope');
  if (!envelope) throw new AppError('OVF_INVALID', 'ovf has no ovf:Envelope element');
  const byImage = new Map(r.disks.map((d) => [d.fromImageId, d]));

  const walk = (nodes: XNode[], inHardware: boolean): XNode[] => {
    const out: XNode[] = [];
    for (const n of nodes) {
      const tag = tagOf(n);
      if (tag === undefined) {
        out.push(n);
        continue;
      }
      const a = attrs(n);
      if (tag === 'File') {
        const d = byImage.get(a['@_ovf:id'] ?? '');
        if (!d) continue;
        a['@_ovf:id'] = d.toImageId;
        a['@_ovf:href'] = `${d.toDiskId}/${d.toImageId}`;
      } else if (tag === 'Disk') {
        const d = byImage.get(a['@_ovf:diskId'] ?? '');
        if (!d) continue; // left out, or a direct LUN (not in a restore point)
        a['@_ovf:diskId'] = d.toImageId;
        a['@_ovf:fileRef'] = `${d.toDiskId}/${d.toImageId}`;
        a['@_ovf:disk-alias'] = d.alias;
      } else if (tag === 'Item' && inHardware) {
        const kids = children(n);
        const type = textOf(kids, 'rasd:ResourceType');
        if (type === '17') {
          const d = byImage.get(textOf(kids, 'rasd:InstanceId') ?? '');
          if (!d) continue;
          setText(kids, 'rasd:InstanceId', d.toImageId);
          setText(kids, 'rasd:HostResource', `${d.toDiskId}/${d.toImageId}`);
          setText(kids, 'rasd:StorageId', d.storageDomainId);
          setText(kids, 'Alias', '');
        } else if (type === '10' && r.clearMacs) {
          setText(kids, 'rasd:MACAddress', '');
        }
      } else if (tag === 'Name' && !inHardware) {
        setOwnText(n, r.name);
      } else if (tag === 'Description' && !inHardware && r.description !== undefined) {
        setOwnText(n, r.description);
      }
      const kids = children(n);
      if (kids.length > 0 && tag !== 'Item') n[tag] = walk(kids, inHardware || isHardware(n));
      out.push(n);
    }
    return out;
  };
  envelope['ovf:Envelope'] = walk(children(envelope), false);
  for (const d of r.disks) {
    if (!new XMLBuilder(OPTS).build([envelope]).includes(d.toImageId)) {
      throw new AppError('OVF_INVALID', `ovf has no disk ${d.fromDiskId}/${d.fromImageId} (${d.alias}) to restore`);
    }
  }
  return new XMLBuilder({ ...OPTS, suppressEmptyNode: true }).build(doc);
}

function tagOf(n: XNode): string | undefined {
  return Object.keys(n).find((k) => k !== ':@' && k !== '#text');
}

function attrs(n: XNode): Record<string, string> {
  n[':@'] ??= {};
  return n[':@'] as Record<string, string>;
}

function children(n: XNode): XNode[] {
  const t = tagOf(n);
  const v = t ? n[t] : undefined;
  return Array.isArray(v) ? (v as XNode[]) : [];
}

/** Section elements carry their kind in xsi:type; hardware Items are disks, NICs, CPUs... */
function isHardware(n: XNode): boolean {
  return tagOf(n) === 'Section' && (attrs(n)['@_xsi:type'] ?? '').endsWith('VirtualHardwareSection_Type');
}

function textOf(kids: XNode[], tag: string): string | undefined {
  const n = kids.find((k) => tagOf(k) === tag);
  const t = n ? children(n).find((c) => '#text' in c) : undefined;
  return t ? String(t['#text']).trim() : n ? '' : undefined;
}

function setText(kids: XNode[], tag: string, value: string): void {
  const n = kids.find((k) => tagOf(k) === tag);
  if (n) setOwnText(n, value);
}

function setOwnText(n: XNode, value: string): void {
  const t = tagOf(n);
  if (t) n[t] = value === '' ? [] : [{ '#text': value }];
}

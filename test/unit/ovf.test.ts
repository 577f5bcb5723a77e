import { existsSync, readFileSync } from 'fs';
import * as path from 'path';
import { AppError } from '../../backend/src/errors';
import { parseOvf } from '../../backend/src/engine';

// Tests run from dist/; the fixtures stay in the source tree.
const FIXTURES = [path.resolve(__dirname, '../fixtures/ovf'), path.resolve(__dirname, '../../../test/fixtures/ovf')].find((d) =>
  existsSync(path.join(d, 'web01.ovf')),
);

function fixture(name: string): string {
  if (!FIXTURES) throw new Error('test/fixtures/ovf not found');
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

function ovfError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an error');
}

describe('parseOvf on the engine OVF of a VM with image disks, a direct LUN and two NICs', () => {
  const ovf = parseOvf(fixture('web01.ovf'));

  test('identity, cluster and definition come from Content and the OS section', () => {
    expect(ovf).toMatchObject({
      ovfVersion: '4.4.0.0',
      vmId: '5e2f3a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b',
      name: 'web01',
      description: 'frontend web server & cache',
      comment: 'owner: web team',
      clusterName: 'Default',
      clusterCompatibilityVersion: '4.7',
      templateId: '00000000-0000-0000-0000-000000000000',
      templateName: 'Blank',
      memoryMb: 4096,
      maxMemoryMb: 16384,
      cpu: { count: 4, sockets: 2, coresPerSocket: 2, threadsPerCore: 1 },
      osType: 'rhel_8x64',
    });
    expect(ovf.creationDate?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
  });

  test('an image disk: disk id from the fileRef, image id from ovf:diskId, domain from its hardware item', () => {
    expect(ovf.disks).toHaveLength(3);
    expect(ovf.disks[0]).toEqual({
      diskId: '8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60',
      imageId: 'b5481c2d-7e6f-4a8b-9c0d-1e2f3a4b5c6d',
      fileRef: '8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60/b5481c2d-7e6f-4a8b-9c0d-1e2f3a4b5c6d',
      storageDomainId: '9cb6e0a1-2b3c-4d5e-8f90-a1b2c3d4e5f6',
      sizeGiB: 20,
      actualSizeGiB: 3,
      actualSizeBytes: 3221225472,
      format: 'cow',
      sparse: true,
      alias: 'web01_Disk1',
      description: '',
      boot: true,
      interface: 'virtio_scsi',
      readOnly: false,
      shareable: false,
      passDiscard: true,
      wipeAfterDelete: false,
      incrementalBackup: true,
      lunId: undefined,
      deviceAlias: 'ua-8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60',
      plugged: true,
    });
  });

  test('a raw preallocated disk keeps its description (with the backup=0 marker) and interface', () => {
    expect(ovf.disks[1]).toMatchObject({
      diskId: '3f9c1d2e-4a5b-4c6d-8e7f-0a1b2c3d4e5f',
      imageId: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d',
      storageDomainId: '0d1e2f3a-4b5c-4d6e-9f7a-8b9c0d1e2f3a',
      format: 'raw',
      sparse: false,
      interface: 'virtio',
      boot: false,
      description: 'scratch space backup=0',
      wipeAfterDelete: true,
      incrementalBackup: false,
    });
  });

  test('a direct LUN has a disk id, a lun id and no image or storage domain', () => {
    expect(ovf.disks[2]).toMatchObject({
      diskId: 'c4d5e6f7-0819-4a2b-bc3d-4e5f60718293',
      imageId: undefined,
      lunId: '36001405f1e2d3c4b5a69788796a5b4c3',
      storageDomainId: undefined,
      format: undefined,
      alias: 'web01_lun',
      plugged: true,
    });
  });

  test('NICs: name, MAC, network, vNIC profile, type mapped to the API name', () => {
    expect(ovf.nics).toEqual([
      {
        id: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
        name: 'nic1',
        mac: '56:6f:1a:2b:00:01',
        network: 'ovirtmgmt',
        vnicProfile: 'ovirtmgmt',
        interface: 'virtio',
        linked: true,
        plugged: true,
        deviceAlias: 'ua-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      },
      {
        id: '2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e',
        name: 'nic2',
        mac: '56:6f:1a:2b:00:02',
        network: 'backend',
        vnicProfile: 'backend-jumbo',
        interface: 'e1000',
        linked: false,
        plugged: false,
        deviceAlias: 'ua-2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e',
      },
    ]);
  });

  test('the OVF as the JSON API delivers it (one line, escaped quotes undone by JSON.parse) reads the same', () => {
    const wire = JSON.stringify({ initialization: { configuration: { type: 'ovf', data: fixture('web01.ovf') } } });
    const data = (JSON.parse(wire) as { initialization: { configuration: { data: string } } }).initialization.configuration.data;
    expect(parseOvf(data)).toEqual(ovf);
  });
});

describe('parseOvf on a VM without disks or NICs', () => {
  test('empty sections give empty lists and defaults, not errors', () => {
    const ovf = parseOvf(fixture('blank.ovf'));
    expect(ovf).toMatchObject({
      vmId: '0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e',
      name: 'empty-shell',
      description: '',
      comment: '',
      clusterName: 'lab',
      memoryMb: 1024,
      cpu: { count: 1, sockets: 1, coresPerSocket: 1, threadsPerCore: 1 },
      osType: 'other_linux',
      disks: [],
      nics: [],
    });
  });
});

describe('parseOvf refuses what a restore cannot use', () => {
  test('truncated xml is OVF_INVALID naming the parser complaint', () => {
    const err = ovfError(() => parseOvf(fixture('truncated.ovf')));
    expect(err.code).toBe('OVF_INVALID');
    expect(err.message).toMatch(/not well-formed/);
  });

  test('no Envelope, no Content, no VM id, no memory are each OVF_INVALID', () => {
    const web01 = fixture('web01.ovf');
    expect(ovfError(() => parseOvf('<vm><name>x</name></vm>')).code).toBe('OVF_INVALID');
    expect(ovfError(() => parseOvf(web01.replace(/<Content[\s\S]*<\/Content>/, ''))).message).toMatch(/no Content/);
    expect(ovfError(() => parseOvf(web01.replace('ovf:id="5e2f3a1b-6c7d-4e8f-9a0b-1c2d3e4f5a6b" ', ''))).message).toMatch(/no vm id/);
    expect(ovfError(() => parseOvf(web01.replace('<rasd:ResourceType>4</rasd:ResourceType>', ''))).message).toMatch(/no memory/);
  });

  test('an unknown volume format is refused rather than guessed', () => {
    const err = ovfError(() => parseOvf(fixture('web01.ovf').replace('ovf:volume-format="RAW"', 'ovf:volume-format="VMDK"')));
    expect(err.code).toBe('OVF_INVALID');
    expect(err.message).toMatch(/3f9c1d2e.*vmdk/);
  });

  test('a fileRef whose image part disagrees with ovf:diskId is refused', () => {
    const bad = fixture('web01.ovf').replace(
      'ovf:fileRef="8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60/b5481c2d-7e6f-4a8b-9c0d-1e2f3a4b5c6d"',
      'ovf:fileRef="8d4b6a3c-2f0e-4c1a-9d77-1b2c3d4e5f60/ffffffff-7e6f-4a8b-9c0d-1e2f3a4b5c6d"',
    );
    expect(ovfError(() => parseOvf(bad)).code).toBe('OVF_INVALID');
  });
});

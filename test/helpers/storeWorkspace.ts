/**
 * What the ObjectStore suites share: a scratch directory, the Ceph lab with a credentials file
 * for it (set up in the suite's beforeAll, removed in its afterAll), a raw S3 client that goes
 * around the product, and small helpers for files and listings.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ObjectStore } from '../../backend/src/repository/store/objectStore';
import { labCredentialsFile, s3Lab, type S3LabEnv } from './s3Lab';

export const MiB = 1 << 20;

export interface StoreWorkspace {
  /** the scratch directory */
  work: string;
  lab: S3LabEnv;
  /** a credentials file for the lab's user */
  creds: string;
  /** An S3 client of its own on the lab (not the product's), for what the store must refuse. */
  rawClient(): S3Client;
  /** A file of `size` random bytes in the scratch directory, and its bytes. */
  bigFile(name: string, size: number): Promise<{ file: string; data: Buffer }>;
}

/** Registers the suite's beforeAll/afterAll; the fields are set once beforeAll has run. */
export function storeWorkspace(tmpPrefix: string): StoreWorkspace {
  const ws = {
    work: '',
    creds: '',
    rawClient: () =>
      new S3Client({
        endpoint: ws.lab.endpoint,
        region: ws.lab.region,
        forcePathStyle: true,
        credentials: { accessKeyId: ws.lab.accessKeyId, secretAccessKey: ws.lab.secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    bigFile: async (name: string, size: number) => {
      const data = randomBytes(size);
      const file = path.join(ws.work, name);
      await fs.writeFile(file, data);
      return { file, data };
    },
  } as StoreWorkspace;
  beforeAll(async () => {
    ws.work = await fs.mkdtemp(path.join(os.tmpdir(), tmpPrefix));
    ws.lab = await s3Lab();
    ws.creds = await labCredentialsFile(ws.lab, ws.work);
  });
  afterAll(async () => {
    if (ws.work !== '') await fs.rm(ws.work, { recursive: true, force: true });
  });
  return ws;
}

export async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

import { execFile } from 'child_process';
import { randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import * as path from 'path';
import type { S3Config } from '../../backend/src/repository/store/s3Config';

/**
 * The S3 endpoint the tests use: the one named by S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY
 * (.ci/run starts the Ceph lab and exports them), else the project's Ceph lab started here by
 * scripts/s3lab/up.sh in /tmp/olvm-s3lab (idempotent; a flock serializes jest workers that ask
 * at once). A lab that cannot start throws: an S3 test never skips.
 */

export interface S3LabEnv {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const REPO_ROOT = path.resolve(__dirname, '../../..');
export const S3LAB_DIR = '/tmp/olvm-s3lab';
const LOCK_FILE = '/tmp/olvm-s3lab.lock';

let started: Promise<S3LabEnv> | undefined;

export function s3Lab(): Promise<S3LabEnv> {
  started ??= fromEnv() ?? startLab();
  return started;
}

function fromEnv(): Promise<S3LabEnv> | undefined {
  const endpoint = process.env.S3_ENDPOINT;
  if (!endpoint) return undefined;
  const accessKeyId = process.env.S3_ACCESS_KEY ?? process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.S3_SECRET_KEY ?? process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    return Promise.reject(new Error(`S3_ENDPOINT=${endpoint} is set but S3_ACCESS_KEY/S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) are not`));
  }
  return Promise.resolve({ endpoint, accessKeyId, secretAccessKey, region: process.env.S3_REGION ?? 'us-east-1' });
}

async function startLab(): Promise<S3LabEnv> {
  const script = path.join(REPO_ROOT, 'scripts/s3lab/up.sh');
  // flock -o: the lock's descriptor is closed for up.sh, so the daemons it starts do not hold it
  const out = await new Promise<string>((resolve, reject) => {
    execFile('flock', ['-o', '-w', '600', LOCK_FILE, 'bash', script, S3LAB_DIR], { timeout: 660_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`the S3 lab (scripts/s3lab/up.sh ${S3LAB_DIR}) did not start: ${err.message}\n${stderr.slice(-3000)}`));
      else resolve(stdout);
    });
  });
  const kv = new Map<string, string>();
  for (const line of out.split('\n')) {
    const m = /^(S3_[A-Z_]+)=(.*)$/.exec(line);
    if (m) kv.set(m[1] as string, m[2] as string);
  }
  const need = (k: string): string => {
    const v = kv.get(k);
    if (!v) throw new Error(`scripts/s3lab/up.sh printed no ${k}:\n${out}`);
    return v;
  };
  return { endpoint: need('S3_ENDPOINT'), accessKeyId: need('S3_ACCESS_KEY'), secretAccessKey: need('S3_SECRET_KEY'), region: kv.get('S3_REGION') ?? 'us-east-1' };
}

/** A bucket name no other test (or earlier run against the same lab) uses: `prefix-<time>-<random>`. */
export function uniqueBucket(prefix: string): string {
  const head = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 30) || 'olvm';
  return `${head}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** An AWS-format credentials file for the lab's user (or a wrong secret) in `dir`. */
export async function labCredentialsFile(lab: S3LabEnv, dir: string, opts: { secret?: string; profile?: string } = {}): Promise<string> {
  const file = path.join(dir, `credentials-${randomBytes(4).toString('hex')}`);
  const profile = opts.profile ?? 'default';
  await fs.writeFile(
    file,
    `# test credentials\n[${profile}]\naws_access_key_id = ${lab.accessKeyId}\naws_secret_access_key = ${opts.secret ?? lab.secretAccessKey}\n`,
    { mode: 0o600 },
  );
  return file;
}

/** The S3Config of `bucket` on the lab, with credentials from `credentialsFile`. */
export function labS3Config(lab: S3LabEnv, bucket: string, credentialsFile: string, prefix = ''): S3Config {
  return { endpoint: lab.endpoint, bucket, prefix, region: lab.region, forcePathStyle: true, credentialsFile };
}

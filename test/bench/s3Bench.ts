/**
 * Benchmark: a repository on object storage (the local Ceph RGW, bluestore) against a repository
 * in a local directory, in the same run, through the installed command.
 *
 *   npm run bench:s3 [-- --disk-gib 1 --data-gib 0.75 --change-mib 32]
 *
 * A real QEMU VM has a DISK GiB qcow2 disk holding DATA GiB in 64 MiB runs, alternately random
 * and text-like (about 3:1 with zstd), zeroes between them (test/bench/common.ts fillImage). With
 * `node dist/backend/src/cli/main.js` (start-up included), each phase from the same page-cache
 * state (sync first):
 *  1. full backup into the directory repository;       2. CHANGE MiB rewritten (1 MiB writes at
 *     random offsets), incremental into it;           3. full backup of that same disk state into
 *     s3://bench-…/repo (the bucket made with Object Lock by `repo init`; the packs go up
 *     multipart, the cache keeps metadata only); 4. CHANGE MiB more, incremental into s3;
 *  5. restore of the same disk state from both: the directory's incremental point, and the s3
 *     full point from a fresh cache directory (a second machine: every pack fetched with ranged
 *     GETs). The two restored images must be the same bytes.
 * The lab: S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY when set, else scripts/s3lab/up.sh started in
 * /var/tmp/olvm-s3lab-bench with OLVM_S3LAB_STORE=bluestore (gigabytes do not fit memstore) and
 * stopped at the end. Prints one JSON object; nothing is asserted but the restored bytes.
 */
import { execFile } from 'child_process';
import { createHash, randomBytes, randomInt } from 'crypto';
import { createReadStream, promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createBucket } from '../../backend/src/repository/store/s3Bucket';
import { S3Store } from '../../backend/src/repository/store/s3Store';
import { TestVm } from '../helpers/qemuVm';
import { arg, cli, du, fillImage, timed } from './common';

const MiB = 1 << 20;
const GiB = 1 << 30;
const DISK = 'virtio-disk0';
const LAB_DIR = '/var/tmp/olvm-s3lab-bench';
const SCRIPTS = path.resolve(__dirname, '../../../scripts/s3lab');

interface Lab {
  endpoint: string;
  env: NodeJS.ProcessEnv;
  stop: () => Promise<void>;
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 900_000, maxBuffer: 1 << 22 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr.slice(-2000)}`)) : resolve(stdout))),
  );
}

async function startLab(): Promise<Lab> {
  const given = process.env['S3_ENDPOINT'];
  if (given) {
    const env = { AWS_ACCESS_KEY_ID: process.env['S3_ACCESS_KEY'] ?? process.env['AWS_ACCESS_KEY_ID'], AWS_SECRET_ACCESS_KEY: process.env['S3_SECRET_KEY'] ?? process.env['AWS_SECRET_ACCESS_KEY'] };
    return { endpoint: given, env, stop: () => Promise.resolve() };
  }
  const out = await sh('bash', [path.join(SCRIPTS, 'up.sh'), LAB_DIR], { OLVM_S3LAB_STORE: 'bluestore' });
  const kv = new Map([...out.matchAll(/^(S3_[A-Z_]+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
  const endpoint = kv.get('S3_ENDPOINT');
  if (!endpoint) throw new Error(`scripts/s3lab/up.sh printed no S3_ENDPOINT:\n${out}`);
  return {
    endpoint,
    env: { AWS_ACCESS_KEY_ID: kv.get('S3_ACCESS_KEY'), AWS_SECRET_ACCESS_KEY: kv.get('S3_SECRET_KEY') },
    stop: async () => void (await sh('bash', [path.join(SCRIPTS, 'down.sh'), LAB_DIR])),
  };
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(file)) h.update(b as Buffer);
  return h.digest('hex');
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

/** What the store itself takes on this machine, through our client (no repository): 8 objects of
 *  32 MiB put with 4 in flight, then read back — the ceiling any backup into it is bounded by. */
async function storeCeiling(lab: Lab): Promise<{ putMiBps: number; getMiBps: number }> {
  const s3 = { endpoint: lab.endpoint, bucket: `bench-raw-${randomBytes(4).toString('hex')}`, prefix: '', region: 'us-east-1', forcePathStyle: true };
  const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
  process.env['AWS_ACCESS_KEY_ID'] = lab.env['AWS_ACCESS_KEY_ID'];
  process.env['AWS_SECRET_ACCESS_KEY'] = lab.env['AWS_SECRET_ACCESS_KEY'];
  try {
    await createBucket(s3, 'off');
    const store = await S3Store.open(s3, { requireObjectLock: false });
    try {
      const body = randomBytes(32 * MiB);
      const keys = Array.from({ length: 8 }, (_, i) => `raw/${i}`);
      const lanes = async (fn: (key: string) => Promise<unknown>): Promise<number> => {
        const t0 = process.hrtime.bigint();
        let next = 0;
        await Promise.all(Array.from({ length: 4 }, async () => {
          while (next < keys.length) await fn(keys[next++] as string);
        }));
        return Number(process.hrtime.bigint() - t0) / 1e9;
      };
      const put = await lanes((k) => store.put(k, body));
      const get = await lanes((k) => store.get(k));
      return { putMiBps: round((keys.length * 32) / put), getMiBps: round((keys.length * 32) / get) };
    } finally {
      await store.close();
    }
  } finally {
    for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function main(): Promise<void> {
  const diskBytes = arg('disk-gib', 1) * GiB;
  const dataBytes = arg('data-gib', 0.75) * GiB;
  const changeMiB = arg('change-mib', 32);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'olvm-s3-bench-'));
  let vm: TestVm | undefined;
  let lab: Lab | undefined;
  try {
    vm = await TestVm.create(path.join(dir, 'vm'), [{ id: DISK, format: 'qcow2', size: diskBytes }]);
    await vm.quit();
    await fillImage(vm.diskFile(DISK), diskBytes, dataBytes, dir, 'mixed');
    await vm.start();
    lab = await startLab();
    const env = { ...lab.env, HOME: dir };
    const local = ['--repo', path.join(dir, 'repo')];
    const s3 = (cache: string): string[] => ['--repo', `s3://bench-${randomBytes(4).toString('hex')}/repo`, '--s3-endpoint', (lab as Lab).endpoint, '--cache', path.join(dir, cache)];
    const s3Writer = s3('cache-writer');
    const s3Reader = [...s3Writer.slice(0, 4), '--cache', path.join(dir, 'cache-reader')];
    await cli(['repo', 'init', ...local], env);
    await cli(['repo', 'init', ...s3Writer], env);
    const backup = async (repo: string[]): Promise<{ seconds: number; point: string; bytesRead: number }> => {
      const t = await timed(() => cli(['backup', ...repo, '--qmp', (vm as TestVm).productQmp, '--vm', 'bench', '--scratch', dir, '--json'], env));
      const r = JSON.parse(t.value.out) as { point: string; disks: Array<{ bytesRead: number }> };
      return { seconds: t.value.seconds, point: r.point, bytesRead: r.disks.reduce((n, d) => n + d.bytesRead, 0) };
    };
    const change = async (): Promise<void> => {
      for (let i = 0; i < changeMiB; i++) await (vm as TestVm).writeRandom(DISK, randomInt(0, diskBytes / MiB) * MiB, MiB);
    };
    const restore = async (repo: string[], point: string, out: string): Promise<number> =>
      (await timed(() => cli(['restore', ...repo, '--point', point, '--disk', DISK, '--out', out], env))).value.seconds;

    const localFull = await backup(local);
    await change();
    const localInc = await backup(local);
    const localRepoBytes = await du(path.join(dir, 'repo'));
    const s3Full = await backup(s3Writer); // the disk as localInc saw it
    await change();
    const s3Inc = await backup(s3Writer);
    const cacheBytes = await du(path.join(dir, 'cache-writer'));
    const outLocal = path.join(dir, 'restore-local.raw');
    const outS3 = path.join(dir, 'restore-s3.raw');
    const localRestore = await restore(local, localInc.point, outLocal);
    const s3Restore = await restore(s3Reader, s3Full.point, outS3);
    const sameBytes = (await sha256(outLocal)) === (await sha256(outS3));
    // what opening the s3 repository costs a command (the metadata sync, the lease, the lock check)
    const s3Open = (await timed(() => cli(['points', ...s3Reader], env))).value.seconds;
    const ceiling = await storeCeiling(lab);
    const mibps = (bytes: number, seconds: number): number => round(bytes / MiB / seconds);
    const result = {
      bench: 'repository on object storage (local Ceph RGW) against a local directory, through the installed command',
      machine: { cpus: os.cpus().length, node: process.version, loadAverage: os.loadavg().map(round) },
      store: process.env['S3_ENDPOINT'] ? 'S3_ENDPOINT' : 'scripts/s3lab/up.sh, bluestore',
      disk: { virtualBytes: diskBytes, dataBytes, layout: '64 MiB runs, alternately random and text-like, zeroes between', changedPerIncrementalBytes: changeMiB * MiB },
      local: {
        full: { seconds: round(localFull.seconds), bytesRead: localFull.bytesRead, MiBps: mibps(localFull.bytesRead, localFull.seconds) },
        incremental: { seconds: round(localInc.seconds), bytesRead: localInc.bytesRead },
        restore: { seconds: round(localRestore), MiBps: mibps(diskBytes, localRestore) },
        repoBytes: localRepoBytes,
      },
      s3: {
        full: { seconds: round(s3Full.seconds), bytesRead: s3Full.bytesRead, MiBps: mibps(s3Full.bytesRead, s3Full.seconds) },
        incremental: { seconds: round(s3Inc.seconds), bytesRead: s3Inc.bytesRead },
        restoreFromFreshCache: { seconds: round(s3Restore), MiBps: mibps(diskBytes, s3Restore) },
        writerCacheBytes: cacheBytes,
        openAndListSeconds: round(s3Open),
      },
      storeCeiling: { ...ceiling, note: '8 × 32 MiB objects, 4 in flight, through our S3 client, no repository: what the store takes on this machine' },
      sameBytes,
      ratios: {
        // throughputs (data read per second): s3 against local
        fullS3VsLocal: round(mibps(s3Full.bytesRead, s3Full.seconds) / mibps(localFull.bytesRead, localFull.seconds)),
        incrementalS3VsLocal: round(localInc.seconds / s3Inc.seconds),
        restoreS3VsLocal: round(localRestore / s3Restore),
      },
      fullS3VsStoreCeiling: round(mibps(s3Full.bytesRead, s3Full.seconds) / ceiling.putMiBps),
      targets: { fullS3VsLocal: '>= 0.6' },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    if (!sameBytes) throw new Error('the images restored from the directory and from s3 differ');
  } finally {
    await vm?.dispose();
    await lab?.stop().catch((err: unknown) => process.stderr.write(`stopping the lab: ${String(err)}\n`));
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});

/**
 * A process that runs one engine-method backup and reports on stdout, one JSON line each: the
 * engine backup's ref (onEngineBackup) and the progress phases. engineMethodCrash.test.ts kills
 * it with SIGKILL at chosen moments. Argument: JSON {baseUrl, user, password, repoDir, vmId, qmpDir, scratchDir}.
 */
import { engineVmBackup } from '../../backend/src/backup';
import { EngineClient } from '../../backend/src/engine';
import { LocalHost } from '../../backend/src/hosts';
import { Repository } from '../../backend/src/repository';

interface ChildArgs {
  baseUrl: string;
  user: string;
  password: string;
  repoDir: string;
  vmId: string;
  qmpDir: string;
  scratchDir: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  const engine = new EngineClient({ baseUrl: a.baseUrl, auth: { kind: 'password', user: a.user, password: a.password } });
  const repo = await Repository.open(a.repoDir);
  const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  let phase = '';
  const r = await engineVmBackup({
    engine,
    vmId: a.vmId,
    repository: repo,
    host: new LocalHost({ qmpDir: a.qmpDir }),
    scratchDir: a.scratchDir,
    method: 'engine',
    onEngineBackup: (ref) => say({ ref }),
    onProgress: (p) => {
      if (p.phase !== phase) say({ phase: (phase = p.phase) });
    },
  });
  say({ point: r.manifest.pointId });
  await repo.close();
  await engine.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});

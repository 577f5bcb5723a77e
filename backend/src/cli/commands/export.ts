/**
 * `olvm-backup export`: one disk of a restore point served read-only over NBD (our own server,
 * nbd/server.ts) on a unix socket or a TCP port (TLS with --tls-cert/--tls-key), straight from
 * the repository, until SIGINT or SIGTERM; then the connections are closed, the point's read
 * lease released and the socket removed. Anything that speaks NBD reads it: qemu-img, nbdcopy,
 * nbdinfo, nbdfuse, libguestfs, a hypervisor.
 */
import type { Command } from 'commander';
import { promises as fs } from 'fs';
import * as path from 'path';
import { AppError, describeError } from '../../errors';
import type { NbdServer } from '../../nbd';
import type { PointExport } from '../../restore';
import { printJson, printLine } from '../output';
import { catchStopSignals } from '../stopSignals';
import { addRepoOptions, type RepoFlags } from '../repoFlags';

interface ExportOptions extends RepoFlags {
  point: string;
  disk: string;
  socket?: string;
  port?: string;
  bind?: string;
  tlsCert?: string;
  tlsKey?: string;
  name?: string;
  verbose?: boolean;
  json?: boolean;
}

export function registerExport(program: Command): void {
  addRepoOptions(program.command('export').description('serve one disk of a restore point read-only over NBD until SIGINT/SIGTERM (qemu-img, nbdcopy, nbdfuse, libguestfs…)'))
    .requiredOption('--point <id>', 'restore point id (see `points`)')
    .requiredOption('--disk <disk>', 'the disk: its device id, or its engine disk id or alias')
    .option('--socket <path>', 'serve on this unix socket (mode 0600)')
    .option('--port <n>', 'serve on this TCP port (0: any free one)')
    .option('--bind <addr>', 'with --port: the address to listen on', '127.0.0.1')
    .option('--tls-cert <file>', 'with --port: PEM certificate (chain); clients must then use TLS')
    .option('--tls-key <file>', 'with --port: PEM private key of --tls-cert')
    .option('--name <export>', 'export name (default: the disk\'s device id; the empty name opens it too)')
    .option('--verbose', 'log every connection on stderr (JSON lines)')
    .option('--json', 'print where it serves as one JSON line')
    .action(async (o: ExportOptions) => {
      const listen = listenOf(o);
      const tlsFiles = o.tlsCert !== undefined || o.tlsKey !== undefined ? await readTls(o) : undefined;
      const [{ openRepository, cliActor }, restore, nbd, { createLogger }] = await Promise.all([
        import('../repoOpen'),
        import('../../restore'),
        import('../../nbd'),
        import('../../util/log'),
      ]);
      const log = createLogger({ level: o.verbose ? 'info' : 'warn', destination: 2, name: 'olvm-backup-export' });
      const repository = await openRepository(o);
      let exported: PointExport | undefined;
      let server: NbdServer | undefined;
      // a signal before we serve ends the run as soon as we do
      const stop = catchStopSignals();
      try {
        const where = 'socket' in listen ? listen.socket : `${listen.host}:${listen.port}`;
        exported = await restore.PointExport.open({ repository, pointId: o.point, disk: o.disk, holder: `${cliActor()} nbd export of disk ${o.disk} on ${where}`, log });
        const name = o.name ?? exported.disk.device;
        server = await nbd.NbdServer.start({
          exports: [{ name, source: exported }],
          listen,
          ...(tlsFiles ? { tls: tlsFiles } : {}),
          log,
          preferredBlock: Math.min(exported.chunkSize, 2 * 1024 * 1024),
        });
        const a = server.address;
        if (o.json) {
          printJson({ point: o.point, disk: exported.disk.device, exportName: name, size: exported.size, ...a });
        } else {
          printLine(`serving disk ${exported.disk.device} of point ${o.point} (${exported.size} bytes, read-only) at ${a.uri}; stop with Ctrl-C or SIGTERM`);
        }
        if ('port' in listen && !tlsFiles && !isLoopback(listen.host)) {
          process.stderr.write(`olvm-backup: warning: the export is served without tls on ${listen.host}: anyone who reaches the port reads the disk\n`);
        }
        log.info({ signal: await stop.wait() }, 'stopping the export');
      } finally {
        stop.dispose();
        await server?.close().catch((err: unknown) => process.stderr.write(`olvm-backup: stopping the nbd server: ${describeError(err)}\n`));
        await exported?.close();
        await repository.close();
      }
    });
}

function listenOf(o: ExportOptions): { socket: string } | { port: number; host: string } {
  if ((o.socket === undefined) === (o.port === undefined)) throw new AppError('INVALID_ARGUMENT', 'give exactly one of --socket PATH and --port N');
  if (o.socket !== undefined) {
    if (o.tlsCert !== undefined || o.tlsKey !== undefined) throw new AppError('INVALID_ARGUMENT', '--tls-cert and --tls-key are for --port (a unix socket is protected by its file mode)');
    return { socket: path.resolve(o.socket) };
  }
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AppError('INVALID_ARGUMENT', `--port must be a TCP port number, not '${o.port}'`);
  return { port, host: o.bind ?? '127.0.0.1' };
}

async function readTls(o: ExportOptions): Promise<{ cert: Buffer; key: Buffer }> {
  if (o.tlsCert === undefined || o.tlsKey === undefined) throw new AppError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await fs.readFile(file);
    } catch (err) {
      throw new AppError('INVALID_ARGUMENT', `cannot read the tls ${what} ${file}`, { cause: err });
    }
  };
  return { cert: await read(o.tlsCert, 'certificate'), key: await read(o.tlsKey, 'key') };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

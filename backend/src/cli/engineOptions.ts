import { promises as fs } from 'fs';
import type { Command } from 'commander';
import type { EngineClient } from '../engine';
import { AppError } from '../errors';

/** The flags every command that talks to the engine takes (backup --engine, restore --engine). */
export interface EngineOptions {
  engine?: string;
  engineUser?: string;
  enginePasswordFile?: string;
  engineCa?: string;
}

/** Adds the four EngineOptions flags to `cmd`, in this order; `--engine`'s help says what the
 *  command does with the engine. */
export function addEngineOptions(cmd: Command, engineHelp: string): Command {
  return cmd
    .option('--engine <url>', engineHelp)
    .option('--engine-user <user@profile>', 'engine account, e.g. admin@internal')
    .option('--engine-password-file <file>', "file holding that account's password")
    .option('--engine-ca <file>', "the engine's CA certificate (PEM)");
}

/** INVALID_ARGUMENT naming each missing flag (`--engine-user`...), for `what`. */
export function requireEngineOptions(o: EngineOptions, what: string, more: Record<string, unknown> = {}): void {
  const missing = Object.entries({ engine: o.engine, engineUser: o.engineUser, enginePasswordFile: o.enginePasswordFile, ...more })
    .filter(([, v]) => v === undefined || v === '')
    .map(([k]) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (missing.length > 0) throw new AppError('INVALID_ARGUMENT', `${what} also needs ${missing.join(', ')}`);
}

/** A client logged in with the account the flags name (its password read from its file). */
export async function engineFromOptions(o: EngineOptions): Promise<EngineClient> {
  const file = o.enginePasswordFile as string;
  let password: string;
  try {
    password = (await fs.readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `cannot read the engine password file ${file}`, { cause: err });
  }
  // loaded here, not with the flags: a command registers them at every start of the CLI
  const { EngineClient } = await import('../engine');
  return new EngineClient({
    baseUrl: o.engine as string,
    ...(o.engineCa ? { caFile: o.engineCa } : {}),
    auth: { kind: 'password', user: o.engineUser as string, password },
    eventOrigin: 'olvm-backup',
  });
}

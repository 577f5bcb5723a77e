import * as readline from 'readline';
import { Writable } from 'stream';

/**
 * The questions `olvm-backup setup` asks when a value was not given as a flag. A prompter reads
 * one line per question; secrets are not echoed when the input is a terminal.
 */
export interface Prompter {
  ask(question: string, opts?: { default?: string; secret?: boolean }): Promise<string>;
  /** yes/no; an empty answer takes `default` */
  confirm(question: string, opts?: { default?: boolean }): Promise<boolean>;
  close(): void;
}

/** Lines from `input` (a TTY or a pipe, e.g. answers fed by a script), questions to `output`. */
export function linePrompter(input: NodeJS.ReadableStream & { isTTY?: boolean }, output: NodeJS.WritableStream): Prompter {
  let muted = false;
  const shown = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      if (!muted) output.write(chunk);
      done();
    },
  });
  const rl = readline.createInterface({ input, output: shown, terminal: input.isTTY === true });
  const lines: string[] = [];
  const waiting: Array<(line: string | undefined) => void> = [];
  let ended = false;
  rl.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  rl.on('close', () => {
    ended = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  const nextLine = (): Promise<string | undefined> => {
    const l = lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (ended) return Promise.resolve(undefined);
    return new Promise((resolve) => waiting.push(resolve));
  };

  const ask = async (question: string, opts: { default?: string; secret?: boolean } = {}): Promise<string> => {
    const hint = opts.default !== undefined && opts.default !== '' && !opts.secret ? ` [${opts.default}]` : '';
    output.write(`${question}${hint}: `);
    muted = opts.secret === true && input.isTTY === true;
    const line = await nextLine();
    if (muted) output.write('\n');
    muted = false;
    if (line === undefined) throw new Error(`no answer to "${question}" (input ended)`);
    if (input.isTTY !== true) output.write(opts.secret ? '\n' : `${line}\n`);
    const answer = line.trim();
    return answer === '' ? (opts.default ?? '') : answer;
  };

  return {
    ask,
    async confirm(question, opts = {}) {
      const def = opts.default ?? false;
      for (;;) {
        const a = (await ask(`${question} [${def ? 'Y/n' : 'y/N'}]`)).toLowerCase();
        if (a === '') return def;
        if (a === 'y' || a === 'yes') return true;
        if (a === 'n' || a === 'no') return false;
        output.write('please answer y or n\n');
      }
    },
    close: () => rl.close(),
  };
}

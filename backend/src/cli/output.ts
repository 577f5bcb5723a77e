/** Everything the CLI prints goes through here, so tests can rely on stdout being only data. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function printLine(line: string): void {
  process.stdout.write(line + '\n');
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  printLine(fmt(header));
  for (const r of rows) printLine(fmt(r));
}

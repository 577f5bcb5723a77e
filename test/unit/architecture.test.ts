import { readdirSync, readFileSync, statSync } from 'fs';
import * as path from 'path';

/**
 * The house's shape, checked on the source: every import of backend/src points down the layers
 * of eslint/house.js (the lint rule checks the same, file by file), and there is no cycle —
 * neither between folders nor between files (type-only imports count: a cycle of types is a
 * cycle of concepts). Also: no backend file over 400 lines.
 */

// dist/test/unit → the repository
const ROOT = path.resolve(__dirname, '..', '..', '..');
const SRC = path.join(ROOT, 'backend', 'src');
// eslint/house.js is plain CommonJS shared with eslint.config.js
// eslint-disable-next-line @typescript-eslint/no-require-imports
const house = require(path.join(ROOT, 'eslint', 'house.js')) as {
  violation(fromRel: string, toRel: string): string | undefined;
  moduleOf(rel: string): string;
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from` and `import('…')`. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const s = m[1] ?? m[2];
    if (s?.startsWith('.')) out.push(s);
  }
  return out;
}

/** The file a relative specifier names: x.ts or x/index.ts. */
function resolve(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // next
    }
  }
  throw new Error(`${path.relative(SRC, from)}: cannot resolve '${spec}'`);
}

const files = sourceFiles(SRC);
const edges = new Map<string, Set<string>>(files.map((f) => [f, new Set(specifiers(readFileSync(f, 'utf8')).map((s) => resolve(f, s)))]));

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('the house: layers and cycles of backend/src', () => {
  test('the source tree was found', () => {
    expect(files.length).toBeGreaterThan(100);
  });

  test('every import points down the layers and enters a module through its index.ts or model.ts', () => {
    const bad: string[] = [];
    for (const [from, tos] of edges) {
      for (const to of tos) {
        const toRel = path.relative(SRC, to).replace(/\.ts$/, '').replace(/[\\/]index$/, '');
        const why = house.violation(path.relative(SRC, from), toRel);
        if (why) bad.push(`${path.relative(SRC, from)} → ${toRel}: ${why}`);
      }
    }
    expect(bad).toEqual([]);
  });

  test('no cycle between folders', () => {
    const folders = new Map<string, Set<string>>();
    for (const [from, tos] of edges) {
      const a = house.moduleOf(path.relative(SRC, from));
      const set = folders.get(a) ?? new Set<string>();
      folders.set(a, set);
      for (const to of tos) {
        const b = house.moduleOf(path.relative(SRC, to));
        if (b !== a) set.add(b);
      }
    }
    expect(cycles(folders)).toEqual([]);
  });

  test('no cycle between files', () => {
    expect(cycles(edges).map((c) => c.map((f) => path.relative(SRC, f)))).toEqual([]);
  });

  test('the checker finds what it must: an upward import, a bypassed index, a cycle', () => {
    expect(house.violation(path.join('repository', 'gc.ts'), path.join('jobs'))).toMatch(/must not import jobs/);
    expect(house.violation(path.join('api', 'app.ts'), path.join('restore', 'plan', 'plan'))).toMatch(/through its index/);
    expect(house.violation(path.join('jobs', 'model.ts'), path.join('restore'))).toMatch(/browser-safe/);
    expect(house.violation(path.join('schedule', 'scheduler.ts'), path.join('jobs'))).toBeUndefined();
    expect(house.violation(path.join('jobs', 'queue.ts'), path.join('schedule'))).toMatch(/peer/);
    expect(cycles(new Map([['a', new Set(['b'])], ['b', new Set(['a'])], ['c', new Set(['c'])]]))).toEqual([['a', 'b'], ['c']]);
  });

  test('no file over 400 lines', () => {
    const long = files.map((f) => [path.relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });
});

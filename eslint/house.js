// The house's layers (README, "The house"): which backend/src folder may import which. One table
// for the lint rule below and for test/unit/architecture.test.ts, which also forbids cycles.
'use strict';
const path = require('path');

/** Highest first. A folder may import folders of lower levels only (plus its PEERS). `main` is
 *  backend/src/main.ts and `errors` backend/src/errors.ts: files, not folders. */
const LEVELS = [
  ['cli'],
  ['main', 'setup'],
  ['api'],
  ['jobs', 'schedule'],
  ['catalog', 'backup', 'restore'],
  ['hosts'],
  ['repository', 'engine', 'nbd', 'qmp'],
  ['config', 'util'],
  ['errors'],
];
/** Imports allowed inside one level: the scheduler submits jobs. */
const PEERS = { schedule: ['jobs'] };
/** Folders without an index.ts: each file is its own module. */
const NO_INDEX = ['util'];

const levelOf = new Map(LEVELS.flatMap((names, i) => names.map((n) => [n, i])));

/** The module a backend/src-relative path belongs to: its first folder, or the file's name. */
function moduleOf(rel) {
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.ts$/, '');
}

/**
 * Why `fromRel` may not import `toRel` (both relative to backend/src, `toRel` without the
 * extension), or undefined when it may.
 */
function violation(fromRel, toRel) {
  const from = moduleOf(fromRel);
  const to = moduleOf(toRel);
  const fromModel = path.basename(fromRel) === 'model.ts';
  if (fromModel && !(toRel.endsWith(`${path.sep}model`) || toRel === path.join('util', 'progress') || path.dirname(toRel) === path.dirname(fromRel))) {
    return `${fromRel} is browser-safe (the UI plugin reads it): it may import other model files only`;
  }
  if (from === to) return undefined;
  const lf = levelOf.get(from);
  const lt = levelOf.get(to);
  if (lf === undefined) return `${from}/ has no place in eslint/house.js LEVELS: add it`;
  if (lt === undefined) return `${to}/ has no place in eslint/house.js LEVELS: add it`;
  if (lt < lf) return `${from}/ must not import ${to}/: arrows point down (${LEVELS.map((l) => l.join('/')).join(' → ')})`;
  if (lt === lf && !(PEERS[from] || []).includes(to)) return `${from}/ must not import its peer ${to}/ (same level; allowed peers: ${JSON.stringify(PEERS)})`;
  const inner = toRel.split(path.sep).slice(1);
  if (!NO_INDEX.includes(to) && levelOf.has(to) && !['main', 'errors'].includes(to) && inner.length > 0 && !(inner.length === 1 && inner[0] === 'model')) {
    return `import ${to}/ through its index.ts (or its browser-safe model.ts), not ${toRel}`;
  }
  return undefined;
}

/** ESLint rule: every relative import of a backend/src file is checked with `violation`. */
const layersRule = {
  meta: { type: 'problem', schema: [], docs: { description: 'backend/src layers: arrows point down, modules through their index.ts' } },
  create(context) {
    const file = context.filename;
    const root = path.join(__dirname, '..', 'backend', 'src');
    const fromRel = path.relative(root, file);
    if (fromRel.startsWith('..')) return {};
    const check = (node) => {
      const src = node.source && node.source.value;
      if (typeof src !== 'string' || !src.startsWith('.')) {
        if ((src === 'express' || src === 'ws') && moduleOf(fromRel) !== 'api') context.report({ node, message: `only api/ may import ${src} (it alone knows HTTP and WebSockets)` });
        return;
      }
      const toRel = path.relative(root, path.resolve(path.dirname(file), src));
      const why = violation(fromRel, toRel);
      if (why) context.report({ node, message: why });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
  },
};

module.exports = { LEVELS, PEERS, NO_INDEX, moduleOf, violation, plugin: { rules: { layers: layersRule } } };

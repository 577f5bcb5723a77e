#!/usr/bin/env node
'use strict';
// Prints, one per line, the top-level node_modules folders the service needs at run time: the
// closure of package.json's dependencies (and the optional and required-peer ones that are installed),
// resolved the way Node's require() resolves them (nearest node_modules upwards). A package
// nested under another one travels inside it, so only top-level folders are printed.
//
// Why not `npm ls --omit=dev --parseable`: its output depends on the npm version and on the
// environment npm scripts pass down (a CI run printed a tree without express), while the
// question here is only "what will require() find", which the files themselves answer.
const fs = require('fs');
const path = require('path');

const root = path.resolve(process.argv[2] || '.');

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** The folder require(name) finds from `from` (a package folder), or null. */
function resolve(name, from) {
  let dir = from;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root) return null;
    const up = path.dirname(dir);
    if (up === dir || !up.startsWith(root)) return null;
    dir = up;
  }
}

const seen = new Set();
const problems = [];
const queue = [[root, readJson(path.join(root, 'package.json'))]];
for (let item = queue.shift(); item; item = queue.shift()) {
  const [dir, pkg] = item;
  const required = Object.keys(pkg.dependencies || {});
  // optional dependencies and peers may be absent; a peer marked optional is left out (it is
  // the host application's choice, e.g. a dev-only tool)
  const peerMeta = pkg.peerDependenciesMeta || {};
  const optional = new Set([
    ...Object.keys(pkg.optionalDependencies || {}),
    ...Object.keys(pkg.peerDependencies || {}).filter((n) => !(peerMeta[n] && peerMeta[n].optional)),
  ]);
  for (const name of [...required, ...optional]) {
    const found = resolve(name, dir);
    if (!found) {
      const isOptional = optional.has(name) && !required.includes(name);
      if (!isOptional) problems.push(`${name} (needed by ${path.relative(root, dir) || 'the service'})`);
      continue;
    }
    if (seen.has(found)) continue;
    seen.add(found);
    queue.push([found, readJson(path.join(found, 'package.json'))]);
  }
}
if (problems.length > 0) {
  process.stderr.write(`not installed: ${problems.join(', ')}: run npm ci\n`);
  process.exit(1);
}
const top = [...seen]
  .map((d) => path.relative(root, d))
  .filter((r) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(r) && !r.startsWith('node_modules/@types/'))
  .sort();
process.stdout.write(top.map((r) => `${r}\n`).join(''));

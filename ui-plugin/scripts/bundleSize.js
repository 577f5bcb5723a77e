#!/usr/bin/env node
// Prints the built plugin's sizes as JSON: every file (raw and gzip -9), and the initial load of
// each page WebAdmin opens (its HTML plus the scripts and stylesheets it references; fonts and
// images load on demand and are listed apart). Exit 1 when a page's initial load exceeds 1 MB gzip.
// Usage: node ui-plugin/scripts/bundleSize.js [dist/olvm-backup]
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const LIMIT_GZIP = 1024 * 1024;
const root = path.resolve(process.argv[2] || path.join(__dirname, '..', 'dist', 'olvm-backup'));
const prefix = '/ovirt-engine/webadmin/plugin/olvm-backup/';

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const files = {};
for (const f of walk(root)) {
  const buf = fs.readFileSync(f);
  files[path.relative(root, f)] = { raw: buf.length, gzip: zlib.gzipSync(buf, { level: 9 }).length };
}

const pages = {};
for (const html of Object.keys(files).filter((f) => f.endsWith('.html'))) {
  const text = fs.readFileSync(path.join(root, html), 'utf8');
  // the HTML is minified: attribute values may come without quotes
  const refs = [...text.matchAll(/(?:src|href)=(?:"([^"]+)"|([^\s>]+))/g)].map((m) => (m[1] || m[2]).replace(prefix, ''));
  const parts = [html, ...refs].filter((r) => files[r]);
  pages[html] = {
    files: parts,
    raw: parts.reduce((s, r) => s + files[r].raw, 0),
    gzip: parts.reduce((s, r) => s + files[r].gzip, 0),
  };
}

const onDemand = Object.keys(files).filter((f) => f.startsWith('assets/'));
const total = Object.values(files).reduce((s, x) => ({ raw: s.raw + x.raw, gzip: s.gzip + x.gzip }), { raw: 0, gzip: 0 });
const worst = Math.max(...Object.values(pages).map((p) => p.gzip));
const report = {
  root,
  limitGzip: LIMIT_GZIP,
  initialLoad: {
    webadminStart: pages['plugin.html'],
    backupPlace: pages['place.html'],
    vmTab: pages['vm-tab.html'],
    restoreDialog: pages['restore.html'],
  },
  largestInitialLoadGzip: worst,
  withinLimit: worst <= LIMIT_GZIP,
  onDemandAssets: { count: onDemand.length, raw: onDemand.reduce((s, f) => s + files[f].raw, 0), gzip: onDemand.reduce((s, f) => s + files[f].gzip, 0) },
  total,
  files,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
if (!report.withinLimit) process.exitCode = 1;

'use strict';
// Summarizes V8 .cpuprofile files (from `node --cpu-prof`): top functions by self time, time per
// package, and inclusive time of mcp-front's own functions.
//   node bench/cpuprofile-top.js <file.cpuprofile>… [--top 25]
const fs = require('node:fs');
const path = require('node:path');

function where(url) {
  if (!url) return '';
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm !== -1) return clean.slice(nm + 'node_modules/'.length);
  if (clean.startsWith('node:')) return clean;
  const root = path.resolve(__dirname, '..') + '/';
  return clean.startsWith(root) ? clean.slice(root.length) : clean;
}

/** Where a frame belongs: a package, node's own library, mcp-front, or V8's pseudo-frames. */
function categoryOf(frame) {
  const name = frame.functionName;
  if (!frame.url) {
    if (name === '(garbage collector)' || name === '(idle)' || name === '(program)' || name === '(root)') return name;
    return '(native / builtins)';
  }
  const w = where(frame.url);
  if (w.startsWith('node:')) return 'node: ' + w.slice(5).split('/')[0].replace(/^internal$/, 'internal/' + (w.split('/')[1] ?? ''));
  if (w.startsWith('dist/')) return 'mcp-front (dist/)';
  if (w.startsWith('bench/')) return 'bench host';
  const parts = w.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

function analyze(file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  // Inclusive time per node (children listed by id).
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = new Map();
  const visit = (id) => {
    const n = byId.get(id);
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += visit(c);
    total.set(id, t);
    return t;
  };
  visit(profile.nodes[0].id);

  const all = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = all - idle;

  const fnSelf = new Map();
  const catSelf = new Map();
  for (const [id, t] of self) {
    const f = byId.get(id).callFrame;
    if (f.functionName === '(idle)') continue;
    const key = `${f.functionName || '(anonymous)'} ${where(f.url)}${f.url ? ':' + (f.lineNumber + 1) : ''}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + t);
    const cat = categoryOf(f);
    catSelf.set(cat, (catSelf.get(cat) ?? 0) + t);
  }
  // Inclusive time of mcp-front functions: each function counted once per stack (no recursion double count).
  const fnIncl = new Map();
  for (const n of profile.nodes) {
    const f = n.callFrame;
    if (!where(f.url).startsWith('dist/')) continue;
    let up = parent.get(n.id);
    let recursive = false;
    while (up !== undefined) {
      const g = byId.get(up).callFrame;
      if (g.functionName === f.functionName && g.url === f.url && g.lineNumber === f.lineNumber) {
        recursive = true;
        break;
      }
      up = parent.get(up);
    }
    if (recursive) continue;
    const key = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`;
    fnIncl.set(key, (fnIncl.get(key) ?? 0) + (total.get(n.id) ?? 0));
  }
  return { file, seconds: (profile.endTime - profile.startTime) / 1e6, busy, idle, fnSelf, catSelf, fnIncl };
}

function print(a, top) {
  const pct = (t) => ((100 * t) / a.busy).toFixed(1).padStart(5) + ' %';
  const ms = (t) => (t / 1000).toFixed(0).padStart(7) + ' ms';
  console.log(`\n=== ${path.basename(a.file)}: ${a.seconds.toFixed(1)} s profiled, ${(a.busy / 1e6).toFixed(1)} s busy (${((100 * a.busy) / (a.busy + a.idle)).toFixed(0)} %)`);
  console.log('\n-- self time by package (share of busy time)');
  for (const [k, t] of [...a.catSelf].sort((x, y) => y[1] - x[1]).slice(0, 16)) console.log(`${ms(t)} ${pct(t)}  ${k}`);
  console.log(`\n-- top ${top} functions by self time`);
  for (const [k, t] of [...a.fnSelf].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${ms(t)} ${pct(t)}  ${k}`);
  console.log('\n-- mcp-front functions by inclusive time');
  for (const [k, t] of [...a.fnIncl].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`${ms(t)} ${pct(t)}  ${k}`);
}

const args = process.argv.slice(2);
let top = 25;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length === 0) {
  console.error('usage: node bench/cpuprofile-top.js <file.cpuprofile>… [--top 25]');
  process.exit(2);
}
for (const f of files) print(analyze(f), top);

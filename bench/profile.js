'use strict';
// CPU profiles of the mcp-front process under load: for each case, bench/run.js is run with the
// mcp-front processes started under `node --cpu-prof` (one fresh process per case and logger),
// then every profile is summarized by bench/cpuprofile-top.js. Profiles go to a temporary
// directory (never committed; *.cpuprofile is gitignored anyway) whose path is printed.
//   npm run build && node bench/profile.js [streamable,sse,stdio]
// BENCH_DURATION (default 10) applies; one round per case.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const cases = (process.argv[2] || 'streamable,sse,stdio').split(',');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-front-profiles-'));
for (const c of cases) {
  const run = spawnSync(process.execPath, [path.join(__dirname, 'run.js')], {
    stdio: 'inherit',
    env: {
      ...process.env,
      BENCH_CASES: c,
      BENCH_ROUNDS: '1',
      BENCH_WARMUP: process.env.BENCH_WARMUP || '1',
      BENCH_RESULTS: '-',
      BENCH_PROFILE: dir,
    },
  });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => path.join(dir, f));
spawnSync(process.execPath, [path.join(__dirname, 'cpuprofile-top.js'), ...files], { stdio: 'inherit' });
console.log(`\nprofiles: ${dir} (open in Chrome DevTools › Performance, or speedscope)`);

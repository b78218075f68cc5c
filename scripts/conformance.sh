#!/usr/bin/env bash
# The official MCP conformance suite (server mode), run against an upstream directly and through
# mcp-front, and the verdicts compared check by check. Not part of `npm test`: it needs Node >= 22
# (the runner's requirement) and the registry. Results: docs/conformance.md.
#
#   bash scripts/conformance.sh            # needs `npm ci` done in this checkout
#
# Everything it installs goes into a temporary directory (kept with KEEP=1):
#   - node@22 (the registry package that ships a Node 22 binary) and
#     @modelcontextprotocol/conformance ($CONFORMANCE_VERSION, default 0.1.16);
#   - mcp-front compiled from this checkout's lib/ (dist/ is left alone); MCP_FRONT_SOURCE=HEAD
#     compiles the last commit's lib/ instead of the working tree (e.g. while lib/ is mid-edit).
# Upstreams: @modelcontextprotocol/server-everything (streamableHttp) and the v2-SDK fixture
# (__tests__/fixtures/v2-server.mjs, dual-era) — each direct, then through scripts/conformance.js
# (the TEST-ONLY harness that injects the bearer token for loopback requests).
#
# Exit status: 0 when every check has the same verdict direct and proxied, 1 otherwise.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CONFORMANCE_VERSION=${CONFORMANCE_VERSION:-0.1.16}
WORK=$(mktemp -d /tmp/mcp-front-conformance.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ -d "$REPO/node_modules/@modelcontextprotocol/server-everything" ] || { echo "run npm ci in $REPO first" >&2; exit 2; }

echo "== installing node@22 and @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $WORK/tools" >&2
mkdir -p "$WORK/tools"
npm install --prefix "$WORK/tools" --no-audit --no-fund --loglevel=error node@22 "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" >&2
NODE22="$WORK/tools/node_modules/node/bin/node"
RUNNER="$WORK/tools/node_modules/@modelcontextprotocol/conformance/dist/index.js"
"$NODE22" --version | grep -q '^v22\.' || { echo "node@22 did not provide a Node 22 binary" >&2; exit 2; }

SOURCE=${MCP_FRONT_SOURCE:-worktree}
echo "== compiling mcp-front ($SOURCE) into $WORK/build/dist" >&2
mkdir -p "$WORK/build" "$WORK/src"
ln -s "$REPO/node_modules" "$WORK/build/node_modules"   # so the build resolves express, hpm, the SDK
ln -s "$REPO/node_modules" "$WORK/src/node_modules"     # and so does the compiler (types)
if [ "$SOURCE" = HEAD ]; then
  git -C "$REPO" archive HEAD lib tsconfig.json tsconfig.build.json | tar -x -C "$WORK/src"
else
  cp -R "$REPO/lib" "$REPO/tsconfig.json" "$REPO/tsconfig.build.json" "$WORK/src/"
fi
(cd "$WORK/src" && "$REPO/node_modules/.bin/tsc" -p tsconfig.build.json --outDir "$WORK/build/dist")
echo "   mcp-front source: $SOURCE of $(git -C "$REPO" rev-parse --short HEAD)" >&2

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# start NAME LOGFILE CMD... : starts a process, waits for its "listening"/"running" line.
start() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    grep -qiE 'listening on port|running on port' "$log" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

run_suite() { # URL OUTDIR
  "$NODE22" "$RUNNER" server --url "$1" --suite all -o "$2" >"$2.log" 2>&1 || true
  sed -n '/=== SUMMARY ===/,$p' "$2.log" >&2
}

pair() { # LABEL UPSTREAM_URL
  local label=$1 url=$2 port
  port=$(free_port)
  start "$WORK/$label-front.log" env MCP_FRONT_DIST="$WORK/build/dist" node "$REPO/scripts/conformance.js" --upstream "$url" --port "$port" --name "$label"
  echo "== $label direct: $url" >&2
  run_suite "$url" "$WORK/results/$label-direct"
  echo "== $label through mcp-front: http://127.0.0.1:$port/$label/mcp" >&2
  run_suite "http://127.0.0.1:$port/$label/mcp" "$WORK/results/$label-proxied"
}

mkdir -p "$WORK/results"

EVERYTHING_PORT=$(free_port)
start "$WORK/everything.log" env PORT="$EVERYTHING_PORT" node "$REPO/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp
pair everything "http://127.0.0.1:$EVERYTHING_PORT/mcp"

V2_PORT=$(free_port)
start "$WORK/v2.log" env PORT="$V2_PORT" node "$REPO/__tests__/fixtures/v2-server.mjs" http
pair v2 "http://127.0.0.1:$V2_PORT/mcp"

# Per check: verdict direct vs proxied, as a markdown table on stdout; differences decide the exit.
"$NODE22" - "$WORK/results" "$CONFORMANCE_VERSION" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [dir, version] = process.argv.slice(2);
function load(run) {
  const out = new Map();
  const base = path.join(dir, run);
  if (!fs.existsSync(base)) return out;
  for (const entry of fs.readdirSync(base)) {
    const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
    const file = path.join(base, entry, 'checks.json');
    if (!fs.existsSync(file)) continue;
    for (const check of JSON.parse(fs.readFileSync(file, 'utf8'))) {
      out.set(`${scenario} / ${check.id}`, { status: check.status, error: (check.errorMessage ?? '').replace(/127\.0\.0\.1:\d+/g, 'HOST') });
    }
  }
  return out;
}
let differences = 0;
console.log(`Conformance ${version}, ${new Date().toISOString().slice(0, 10)}, runner on Node ${process.version}\n`);
for (const label of ['everything', 'v2']) {
  const direct = load(`${label}-direct`);
  const proxied = load(`${label}-proxied`);
  const keys = [...new Set([...direct.keys(), ...proxied.keys()])].sort();
  const count = (m, s) => [...m.values()].filter((c) => c.status === s).length;
  console.log(`### ${label}: direct ${count(direct, 'SUCCESS')}/${direct.size} SUCCESS, proxied ${count(proxied, 'SUCCESS')}/${proxied.size} SUCCESS\n`);
  console.log('| scenario / check | direct | proxied | same |');
  console.log('|---|---|---|---|');
  for (const key of keys) {
    const d = direct.get(key);
    const p = proxied.get(key);
    const same = d?.status === p?.status;
    if (!same) differences++;
    const show = (c) => (c ? c.status + (c.error && c.status !== 'SUCCESS' ? ` (${c.error.slice(0, 90).replace(/\|/g, '/')})` : '') : 'missing');
    console.log(`| ${key} | ${show(d)} | ${show(p)} | ${same ? 'yes' : '**no**'} |`);
  }
  console.log('');
}
console.log(differences === 0 ? 'Every check has the same verdict direct and through mcp-front.' : `${differences} check(s) differ.`);
process.exit(differences === 0 ? 0 : 1);
EOF

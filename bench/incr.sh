#!/usr/bin/env bash
# Increments per second over HTTP keep-alive: Statehub's POST /key?incr against a trivial net/http
# counter (bench/baseline), each under the same wrk load, alternating for several rounds in one run.
# Prints each round and the median ratio; also the ratio of the same counter answering with
# Statehub's response headers (baseline -headers), the part of the gap that is the response format.
#   bench/incr.sh [duration] [connections] [rounds]        e.g. bench/incr.sh 5s 64 5
# Extra Statehub flags can be passed in STATEHUB_BENCH_FLAGS (default: -data "" for memory only).
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
conns=${2:-64}
rounds=${3:-5}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
go build -o "$tmp/statehub" . && go build -o "$tmp/baseline" ./bench/baseline
cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
LUA
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
rate() { wrk -t2 -c"$conns" -d"$dur" -s "$tmp/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'; }

"$tmp/baseline" -addr 127.0.0.1:18100 & pids+=($!)
"$tmp/baseline" -addr 127.0.0.1:18102 -headers & pids+=($!)
# shellcheck disable=SC2086
"$tmp/statehub" -addr 127.0.0.1:18101 ${STATEHUB_BENCH_FLAGS:--data ""} 2>/dev/null & pids+=($!)
wait_up http://127.0.0.1:18100/
wait_up http://127.0.0.1:18102/
wait_up http://127.0.0.1:18101/.health

# Alternate the servers, so all see the same background load; report each round's ratio and
# the median. This machine is shared: only ratios from one run mean anything.
ratios=()
hratios=()
for round in $(seq "$rounds"); do
  base=$(rate http://127.0.0.1:18100/)
  hub=$(rate "http://127.0.0.1:18101/bench/counter?incr")
  hdrs=$(rate http://127.0.0.1:18102/)
  r=$(awk -v a="$hub" -v b="$base" 'BEGIN { printf "%.3f", a/b }')
  h=$(awk -v a="$hdrs" -v b="$base" 'BEGIN { printf "%.3f", a/b }')
  ratios+=("$r")
  hratios+=("$h")
  echo "round $round: baseline $base req/s, statehub $hub req/s, ratio $r; baseline with Statehub's headers $hdrs req/s, ratio $h"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median ratio statehub/baseline: $(median "${ratios[@]}")"
echo "median ratio baseline with Statehub's headers/baseline: $(median "${hratios[@]}")"

#!/usr/bin/env bash
# Increments per second over HTTP keep-alive: Statehub's POST /key?incr against two yardsticks
# (bench/baseline, package counter), each under the same wrk load, alternating for several rounds
# in one run: the bare net/http counter, and the like-for-like counter (Statehub's response
# headers, CORS and Prometheus request metrics, on an http.Server with Statehub's timeouts).
# Prints each round and the median ratios.
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
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null -X POST "$1" && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
rate() { wrk -t2 -c"$conns" -d"$dur" -s "$tmp/post.lua" "$1" | awk '/Requests\/sec/ {print $2}'; }

"$tmp/baseline" -addr 127.0.0.1:18100 & pids+=($!)
"$tmp/baseline" -addr 127.0.0.1:18102 -like & pids+=($!)
# shellcheck disable=SC2086
"$tmp/statehub" -addr 127.0.0.1:18101 ${STATEHUB_BENCH_FLAGS:--data ""} 2>/dev/null & pids+=($!)
wait_up http://127.0.0.1:18100/
wait_up http://127.0.0.1:18102/
wait_up "http://127.0.0.1:18101/bench/counter?incr"

# Alternate the servers, so all see the same background load; report each round's ratios and
# the medians. Only ratios from one run mean anything.
bare=()
like=()
for round in $(seq "$rounds"); do
  base=$(rate http://127.0.0.1:18100/)
  hub=$(rate "http://127.0.0.1:18101/bench/counter?incr")
  lk=$(rate http://127.0.0.1:18102/)
  rb=$(awk -v a="$hub" -v b="$base" 'BEGIN { printf "%.3f", a/b }')
  rl=$(awk -v a="$hub" -v b="$lk" 'BEGIN { printf "%.3f", a/b }')
  bare+=("$rb")
  like+=("$rl")
  echo "round $round: statehub $hub req/s; bare counter $base req/s, ratio $rb; like-for-like counter $lk req/s, ratio $rl"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median ratio statehub/bare counter: $(median "${bare[@]}")"
echo "median ratio statehub/like-for-like counter: $(median "${like[@]}")"

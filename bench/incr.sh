#!/usr/bin/env bash
# Increments per second over HTTP keep-alive: Statehub's POST /key?incr against two yardsticks
# (bench/baseline, package counter), each under the same wrk load, alternating for several rounds
# in one run: the bare net/http counter, and the like-for-like counter (Statehub's response
# headers, CORS and Prometheus request metrics, on an http.Server with Statehub's timeouts).
# Prints each round and the median ratios, of requests per second and of server CPU time per
# request (from /proc/PID/stat), which other load on the machine disturbs less.
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
tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# rate URL PID -> "requests/s CPU-µs/request" of the server PID under wrk
rate() {
  local c0 out c1
  c0=$(cpu "$2")
  out=$(wrk -t2 -c"$conns" -d"$dur" -s "$tmp/post.lua" "$1")
  c1=$(cpu "$2")
  echo "$out" | awk -v c="$((c1 - c0))" -v t="$tick_us" '/requests in/ { n = $1 } /Requests\/sec/ { r = $2 } END { printf "%s %.2f\n", r, c * t / n }'
}

"$tmp/baseline" -addr 127.0.0.1:18100 & bare_pid=$!; pids+=($!)
"$tmp/baseline" -addr 127.0.0.1:18102 -like & like_pid=$!; pids+=($!)
# shellcheck disable=SC2086
"$tmp/statehub" -addr 127.0.0.1:18101 ${STATEHUB_BENCH_FLAGS:--data ""} 2>/dev/null & hub_pid=$!; pids+=($!)
wait_up http://127.0.0.1:18100/
wait_up http://127.0.0.1:18102/
wait_up "http://127.0.0.1:18101/bench/counter?incr"

# Alternate the servers, so all see the same background load; report each round's ratios and
# the medians. Only ratios from one run mean anything.
# The CPU ratios are the counter's CPU time per request over Statehub's, so that, as for
# requests per second, 1 means as cheap as the counter.
bare=() like=() cbare=() clike=()
for round in $(seq "$rounds"); do
  read -r base base_cpu < <(rate http://127.0.0.1:18100/ "$bare_pid")
  read -r hub hub_cpu < <(rate "http://127.0.0.1:18101/bench/counter?incr" "$hub_pid")
  read -r lk lk_cpu < <(rate http://127.0.0.1:18102/ "$like_pid")
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }
  bare+=("$(ratio "$hub" "$base")") like+=("$(ratio "$hub" "$lk")")
  cbare+=("$(ratio "$base_cpu" "$hub_cpu")") clike+=("$(ratio "$lk_cpu" "$hub_cpu")")
  echo "round $round: statehub $hub req/s ($hub_cpu µs CPU each); bare counter $base req/s ($base_cpu µs), ratios ${bare[-1]} (CPU ${cbare[-1]}); like-for-like counter $lk req/s ($lk_cpu µs), ratios ${like[-1]} (CPU ${clike[-1]})"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median ratio statehub/bare counter: $(median "${bare[@]}") requests per second, $(median "${cbare[@]}") CPU per request"
echo "median ratio statehub/like-for-like counter: $(median "${like[@]}") requests per second, $(median "${clike[@]}") CPU per request"

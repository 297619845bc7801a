#!/usr/bin/env bash
# Pipelined and single-client durable writes against redis, alternating in one run, on 127.0.0.1:
#  - one WebSocket with 64 increments in flight (bench/pipeline -burst: 64 requests in one write,
#    then their answers, as redis-benchmark -P sends them) on Statehub with -sync=always against
#    redis-benchmark -P 64 -c 1 INCR on redis-server with appendfsync always; the records per
#    fsync of Statehub's log over the run; and Statehub's rate when each request leaves as an
#    answer comes back (bench/pipeline without -burst), as a browser that writes fast sends them;
#  - the same on a memory-only Statehub against redis-benchmark -P 16 -c 1 INCR on redis-server
#    without persistence;
#  - one client, one request at a time, -sync=always against appendfsync always: p50 latency of
#    Statehub's WebSocket (bench/pipeline -inflight 1) and HTTP (wrk -c 1, POST ?incr) against
#    redis-benchmark -c 1, and each server's context switches per write (all its threads'
#    voluntary and involuntary switches from /proc/PID/task/*/status around the run).
# Prints each round and the median ratios. Every process it starts is killed by its PID.
#   bench/pipeline.sh [duration] [rounds]          e.g. bench/pipeline.sh 5s 3
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
rounds=${2:-3}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for tool in wrk redis-server redis-benchmark redis-cli python3; do
  command -v $tool >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
go build -o "$tmp/statehub" . && go build -o "$tmp/pipeline" ./bench/pipeline
token=bench-admin-token-0123456789
printf 'wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$token" > "$tmp/post.lua"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null -H "Authorization: Bearer $token" "$1" && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
wait_redis() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done; echo "no redis on $1" >&2; exit 1; }
# switches PID -> the context switches of all its threads so far
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n }'; }

always=$(free_port)
"$tmp/statehub" -addr 127.0.0.1:$always -data "$tmp/data" -sync always -admin-token $token 2>/dev/null & always_pid=$!; pids+=($!)
mem=$(free_port)
"$tmp/statehub" -addr 127.0.0.1:$mem -data "" -admin-token $token 2>/dev/null & pids+=($!)
raof=$(free_port)
mkdir -p "$tmp/redis-aof" "$tmp/redis-mem"
redis-server --port $raof --bind 127.0.0.1 --dir "$tmp/redis-aof" --appendonly yes --appendfsync always --save '' >/dev/null & raof_pid=$!; pids+=($!)
rmem=$(free_port)
redis-server --port $rmem --bind 127.0.0.1 --dir "$tmp/redis-mem" --appendonly no --save '' >/dev/null & pids+=($!)
wait_up http://127.0.0.1:$always/.health
wait_up http://127.0.0.1:$mem/.health
wait_redis $raof
wait_redis $rmem

# redis PORT ARGS... -> "requests/s p50-µs" of redis-benchmark INCR
redis() {
  local port=$1; shift
  timeout 120 redis-benchmark -p "$port" -t incr --csv "$@" | awk -F'"' '$2 == "INCR" { printf "%s %.0f\n", $4, $10 * 1000 }'
}
# hub PORT ARGS... -> bench/pipeline's key=value line
hub() { local port=$1; shift; "$tmp/pipeline" -url http://127.0.0.1:"$port" -token $token -d "$dur" "$@"; }
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
p64=() mem16=() perfs=() rolling=() lat_ws=() lat_http=() cs_ws=() cs_http=() cs_redis=()
for round in $(seq "$rounds"); do
  out=$(hub $always -inflight 64 -burst)
  read -r r64 _ < <(redis $raof -c 1 -P 64 -n 200000)
  ops=$(field "$out" ops_per_s)
  p64+=("$(ratio "$ops" "$r64")") perfs+=("$(field "$out" records_per_fsync)")
  rolling+=("$(field "$(hub $always -inflight 64)" ops_per_s)")
  echo "round $round: 64 in flight, durable: statehub $ops incr/s in bursts, $(field "$out" records_per_fsync) records per fsync, ${rolling[-1]}/s rolling; redis -P64 appendfsync always $r64/s; ratio ${p64[-1]}"

  out=$(hub $mem -inflight 64 -burst)
  read -r r16 _ < <(redis $rmem -c 1 -P 16 -n 2000000)
  mem16+=("$(ratio "$(field "$out" ops_per_s)" "$r16")")
  echo "round $round: 64 in flight, memory only: statehub $(field "$out" ops_per_s) incr/s; redis -P16 $r16/s; ratio ${mem16[-1]}"

  c0=$(switches $always_pid); out=$(hub $always -inflight 1); c1=$(switches $always_pid)
  n=$(awk -v o="$(field "$out" ops_per_s)" -v d="${dur%s}" 'BEGIN { print o * d }')
  ws_p50=$(field "$out" p50_us) cs_ws+=("$(awk -v c=$((c1 - c0)) -v n="$n" 'BEGIN { printf "%.1f", c / n }')")
  c0=$(switches $always_pid)
  wout=$(wrk -t1 -c1 -d"$dur" --latency -s "$tmp/post.lua" "http://127.0.0.1:$always/bench/http?incr")
  c1=$(switches $always_pid)
  http_n=$(echo "$wout" | awk '/requests in/ { print $1 }')
  http_p50=$(echo "$wout" | awk '$1 == "50%" { v = $2; if (v ~ /ms$/) v *= 1000; else v += 0; print v }')
  cs_http+=("$(awk -v c=$((c1 - c0)) -v n="$http_n" 'BEGIN { printf "%.1f", c / n }')")
  c0=$(switches $raof_pid)
  read -r _ r_p50 < <(redis $raof -c 1 -n 5000)
  c1=$(switches $raof_pid)
  cs_redis+=("$(awk -v c=$((c1 - c0)) 'BEGIN { printf "%.1f", c / 5000 }')")
  lat_ws+=("$(ratio "$ws_p50" "$r_p50")") lat_http+=("$(ratio "$http_p50" "$r_p50")")
  echo "round $round: one client, durable: p50 statehub WebSocket ${ws_p50} µs (${cs_ws[-1]} context switches a write), HTTP ${http_p50} µs (${cs_http[-1]}); redis ${r_p50} µs (${cs_redis[-1]}); ratios ${lat_ws[-1]}, ${lat_http[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median ratio, 64 in flight, statehub -sync=always / redis -P64 appendfsync always: $(median "${p64[@]}") ($(median "${perfs[@]}") records per fsync; rolling: $(median "${rolling[@]}")/s)"
echo "median ratio, 64 in flight, statehub memory only / redis -P16: $(median "${mem16[@]}")"
echo "median ratio of p50, one client, statehub / redis appendfsync always: WebSocket $(median "${lat_ws[@]}"), HTTP $(median "${lat_http[@]}")"
echo "median context switches per durable write, one client: statehub WebSocket $(median "${cs_ws[@]}"), HTTP $(median "${cs_http[@]}"); redis $(median "${cs_redis[@]}")"

#!/usr/bin/env bash
# Durability cost, alternating in one run: increments per second and p99 latency over HTTP
# keep-alive with -sync=always against -sync=none (wrk, POST ?incr), and redis-server with
# appendfsync always under redis-benchmark INCR with as many connections, round after round; the
# server CPU time per increment of each Statehub (from /proc/PID/stat), and the records per fsync
# of the -sync=always log over the run (from /.metrics). Prints each round and the median ratios.
#   bench/durability.sh [duration] [connections] [rounds]          e.g. bench/durability.sh 8s 64 3
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
conns=${2:-64}
rounds=${3:-3}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for tool in wrk redis-server redis-benchmark; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install -y wrk redis-server" >&2; exit 1; }
done
go build -o "$tmp/statehub" .
printf 'wrk.method = "POST"\n' > "$tmp/post.lua"
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

"$tmp/statehub" -addr 127.0.0.1:18201 -data "$tmp/data-always" -sync always 2>/dev/null & always_pid=$!; pids+=($!)
"$tmp/statehub" -addr 127.0.0.1:18202 -data "$tmp/data-none" -sync none 2>/dev/null & none_pid=$!; pids+=($!)
mkdir -p "$tmp/redis"
redis-server --port 18203 --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes --appendfsync always --save '' >/dev/null & pids+=($!)
wait_up http://127.0.0.1:18201/.health
wait_up http://127.0.0.1:18202/.health
for _ in $(seq 50); do redis-cli -p 18203 ping >/dev/null 2>&1 && break; sleep 0.1; done

# metric NAME -> the -sync=always server's value (/.metrics needs the admin token, which the
# server keeps in its data directory)
metric() {
  curl -s -H "Authorization: Bearer $(cat "$tmp/data-always/admin-token")" http://127.0.0.1:18201/.metrics |
    awk -v n="$1" '$1 == n { print $2 }'
}
# rate PORT PID -> "requests/s p99 CPU-µs/request" of the server under wrk
rate() {
  local c0 out c1
  c0=$(cpu "$2")
  out=$(wrk -t2 -c"$conns" -d"$dur" --latency -s "$tmp/post.lua" "http://127.0.0.1:$1/bench/n?incr")
  c1=$(cpu "$2")
  echo "$out" | awk -v c="$((c1 - c0))" -v t="$tick_us" '/requests in/ { n = $1 } /Requests\/sec/ { r = $2 } $1 == "99%" { p = $2 } END { printf "%s %s %.1f\n", r, p, c * t / n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
records0=$(metric statehub_wal_records_total) syncs0=$(metric statehub_wal_fsyncs_total)
none=() redis=() cpus=()
for round in $(seq "$rounds"); do
  read -r a a99 acpu < <(rate 18201 "$always_pid")
  read -r n n99 ncpu < <(rate 18202 "$none_pid")
  read -r r r99 < <(redis-benchmark -p 18203 -c "$conns" -n 200000 -t incr --csv | awk -F'"' '$2 == "INCR" {print $4, $14}')
  none+=("$(ratio "$a" "$n")") redis+=("$(ratio "$a" "$r")") cpus+=("$(ratio "$ncpu" "$acpu")")
  echo "round $round: -sync=always $a incr/s, p99 $a99, $acpu µs CPU each; -sync=none $n incr/s, p99 $n99, $ncpu µs; redis appendfsync always $r/s, p99 ${r99}ms; ratios always/none ${none[-1]} (CPU ${cpus[-1]}), always/redis ${redis[-1]}"
done
records=$(awk -v a="$(metric statehub_wal_records_total)" -v b="$records0" 'BEGIN { print a - b }')
syncs=$(awk -v a="$(metric statehub_wal_fsyncs_total)" -v b="$syncs0" 'BEGIN { print a - b }')
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "median ratio -sync=always/-sync=none: $(median "${none[@]}") in increments per second, $(median "${cpus[@]}") in CPU per increment (none's over always's)"
echo "median ratio statehub -sync=always/redis appendfsync always: $(median "${redis[@]}")"
awk -v r="$records" -v s="$syncs" 'BEGIN { if (s > 0) printf "records per fsync: %.1f (%d records, %d fsyncs)\n", r / s, r, s }'

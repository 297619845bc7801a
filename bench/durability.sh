#!/usr/bin/env bash
# Durability cost, in one run: increments per second and p99 latency over HTTP keep-alive with
# -sync=always against -sync=none (wrk, POST ?incr), fsyncs per record from /.metrics, and
# redis-server with appendfsync always under redis-benchmark INCR for comparison.
#   bench/durability.sh [duration] [connections]          e.g. bench/durability.sh 10s 64
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}
conns=${2:-64}
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

run() { # mode port -> prints "rate p99"
  "$tmp/statehub" -addr 127.0.0.1:$2 -data "$tmp/data-$1" -sync "$1" 2>/dev/null & local pid=$!
  pids+=($pid)
  wait_up http://127.0.0.1:$2/.health
  wrk -t2 -c"$conns" -d"$dur" --latency -s "$tmp/post.lua" "http://127.0.0.1:$2/bench/n?incr" > "$tmp/wrk-$1"
  local rate p99 syncs records
  rate=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-$1")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk-$1")
  # /.metrics needs the admin token, which the server keeps in its data directory.
  metrics=$(curl -s -H "Authorization: Bearer $(cat "$tmp/data-$1/admin-token")" http://127.0.0.1:$2/.metrics || true)
  syncs=$(echo "$metrics" | awk '/^statehub_wal_fsyncs_total/ {print $2}')
  records=$(echo "$metrics" | awk '/^statehub_wal_records_total/ {print $2}')
  kill $pid; wait $pid 2>/dev/null || true
  echo "$rate $p99 ${records:-?} ${syncs:-?}"
}
read -r always_rate always_p99 always_records always_syncs < <(run always 18201)
read -r none_rate none_p99 _ _ < <(run none 18202)

mkdir -p "$tmp/redis"
redis-server --port 18203 --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes --appendfsync always --save '' >/dev/null & pids+=($!)
for _ in $(seq 50); do redis-cli -p 18203 ping >/dev/null 2>&1 && break; sleep 0.1; done
read -r redis redis_p99 < <(redis-benchmark -p 18203 -c "$conns" -n 200000 -t incr --csv | awk -F'"' '$2 == "INCR" {print $4, $14}')

echo "statehub -sync=always: $always_rate incr/s, p99 $always_p99"
echo "statehub -sync=none:   $none_rate incr/s, p99 $none_p99"
awk -v a="$always_rate" -v b="$none_rate" 'BEGIN { printf "ratio always/none:      %.2f\n", a/b }'
if [ "$always_syncs" != "?" ] && [ "$always_syncs" != "0" ]; then
  awk -v r="$always_records" -v s="$always_syncs" 'BEGIN { printf "records per fsync:      %.1f (%d records, %d fsyncs)\n", r/s, r, s }'
fi
echo "redis appendfsync always, redis-benchmark INCR: $redis req/s, p99 ${redis_p99}ms"
awk -v a="$always_rate" -v b="$redis" 'BEGIN { printf "ratio statehub always/redis always: %.2f\n", a/b }'

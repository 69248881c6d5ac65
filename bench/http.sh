#!/usr/bin/env bash
# HTTP load with wrk (16 connections, loopback only): the bare net/http floor, then dowasm's
# counter with one hot object and with 10,000 objects at random, under full and relaxed
# durability. Prints requests/s and each as a ratio to the floor measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
go build -o .bin/dowasm ./cli/dowasm
go build -o .bin/floor ./bench/floor
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # name cmd... ; sets URL
  local log="$tmp/$1.log"; shift
  "$@" >"$log" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 1 600); do
    URL=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
    [ -n "$URL" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$log.err")" >&2; exit 1
}
rps() { wrk -t2 -c16 -d"$DUR" "$@" | awk '/Requests\/sec/ {print $2}'; }

start floor .bin/floor
floorURL=$URL
floorPID=${pids[-1]}
measure_floor() { rps -s bench/hot.lua "$floorURL"; }

for d in full relaxed; do
  cat >"$tmp/dowasm.yaml" <<YAML
data: $tmp/data-$d
durability: $d
idle_timeout: 2s   # bounds live standard-Go instances (2-4 MB each) in the 10,000-object run
classes:
  - name: counter
    source: $PWD/examples/counter/go
YAML
  start "dowasm-$d" .bin/dowasm run --config "$tmp/dowasm.yaml" --listen 127.0.0.1:0 --log-level warn
  curl -fsS -XPOST "$URL/counter/hot/increment" >/dev/null
  # The floor is measured right before each run: this machine's speed drifts within minutes.
  f1=$(measure_floor); hot=$(rps -s bench/hot.lua "$URL")
  f2=$(measure_floor); rnd=$(OBJECTS=10000 rps -s bench/random.lua "$URL")
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  awk -v d="$d" -v h="$hot" -v r="$rnd" -v f1="$f1" -v f2="$f2" 'BEGIN {
    printf "durability %-7s hot object: %6.0f req/s = %4.1f%% of floor (%6.0f)   10,000 objects: %5.0f req/s = %4.1f%% of floor (%6.0f)\n", d, h, 100*h/f1, f1, r, 100*r/f2, f2 }'
done

# Calls between objects over HTTP (issue 6): the shards example (Rust build), relaxed durability.
# GET /shards/x.shard0/value is one direct event; GET /shards/x/total is one event at the front
# that makes 4 RPCs to its shards. Latency p50/p99 and req/s of each, with the floor.
cat >"$tmp/calls.yaml" <<YAML
data: $tmp/data-calls
durability: relaxed
classes:
  - name: shards
    source: $PWD/examples/shards/rust
YAML
start dowasm-calls .bin/dowasm run --config "$tmp/calls.yaml" --listen 127.0.0.1:0 --log-level warn
for _ in 1 2 3 4; do curl -fsS -XPOST "$URL/shards/x/increment" >/dev/null; done
lat() { wrk -t2 -c16 -d"$DUR" --latency "$1" | awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}'; }
f=$(measure_floor)
read -r drps dp50 dp99 <<<"$(lat "$URL/shards/x.shard0/value")"
read -r trps tp50 tp99 <<<"$(lat "$URL/shards/x/total")"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
echo "calls: floor $f req/s; direct event to a shard: $drps req/s ($(awk -v a="$drps" -v f="$f" 'BEGIN{printf "%.1f", 100*a/f}')% of floor), p50 $dp50, p99 $dp99; front making 4 RPCs: $trps req/s, p50 $tp50, p99 $tp99"

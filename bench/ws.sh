#!/usr/bin/env bash
# WebSockets (issue 5), loopback only: dowasm's cursors class (Rust build, full durability,
# idle_timeout 1s) against a bare coder/websocket floor (bench/wsfloor) measured in the same run.
# The load client (bench/ws) is its own process.
#   broadcast: N sockets in one room; moves from 1 sender and from 4 (each at most 16 moves ahead
#              of a designated receiver), then a latency phase (one move at a time, the next once
#              every receiver has it); every delivery checked exactly once and in order.
#   idle:      IDLE_N sockets over ROOMS rooms; server RSS per idle socket once the rooms hibernated.
# Each server is started fresh for each measurement; the floor runs right before dowasm.
# Knobs: N (1000), MSGS (moves per throughput phase, 1000), LAT_MSGS (200), IDLE_N (10000),
# ROOMS (100), SETTLE (seconds after the last join before the idle RSS, 5).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
MSGS=${MSGS:-1000}
LAT_MSGS=${LAT_MSGS:-200}
IDLE_N=${IDLE_N:-10000}
ROOMS=${ROOMS:-100}
SETTLE=${SETTLE:-5}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE_N + 200)) ]; then
  echo "open-file limit $(ulimit -n) is too low for IDLE_N=$IDLE_N" >&2; exit 1
fi

go build -o .bin/dowasm ./cli/dowasm
go build -o .bin/wsfloor ./bench/wsfloor
go build -o .bin/wsbench ./bench/ws

if command -v cargo >/dev/null && command -v rustc >/dev/null; then
  guest="source: $PWD/examples/cursors/rust"; guestName="Rust"
elif command -v tinygo >/dev/null; then
  guest="source: $PWD/examples/cursors/go
    toolchain: tinygo"; guestName="TinyGo"
else
  echo "needs rustc+cargo (or tinygo) to build the cursors guest" >&2; exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

start() { # name cmd... ; sets URL (http://host:port) and PID
  local log="$tmp/$1.log"; shift
  : >"$log"
  "$@" >"$log" 2>"$log.err" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 1 1200); do
    URL=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
    [ -n "$URL" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server did not start: $(cat "$log.err")" >&2; exit 1
}
stop() { # pid: TERM, then KILL after 10 s
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
start_dowasm() { # name
  cat >"$tmp/$1.yaml" <<YAML
data: $tmp/data-$1
durability: full
idle_timeout: 1s
classes:
  - name: cursors
    $guest
YAML
  start "$1" .bin/dowasm run --config "$tmp/$1.yaml" --listen 127.0.0.1:0 --log-level warn
}
ws() { # label args... : runs the client, keeps its RESULT lines in $tmp/results as "label key=value..."
  local out="$tmp/client.out"
  if ! .bin/wsbench "${@:2}" >"$out"; then echo "client failed ($1)" >&2; exit 1; fi
  sed -n "s/^RESULT /$1 /p" "$out" >>"$tmp/results"
}
: >"$tmp/results"

echo "== floor: echo and broadcast" >&2
start floor-b .bin/wsfloor
ws floor echo -url "ws://${URL#http://}/echo" -c 16 -d 3s
ws floor broadcast -url "ws://${URL#http://}" -path-fmt '/room/%s?name=%s' -pid "$PID" -n "$N" -msgs "$MSGS" -senders 1,4 -latency-msgs "$LAT_MSGS"
stop "$PID"

echo "== dowasm: broadcast" >&2
start_dowasm dowasm-b
ws dowasm broadcast -url "ws://${URL#http://}" -path-fmt '/cursors/%s/ws?name=%s' -pid "$PID" -n "$N" -msgs "$MSGS" -senders 1,4 -latency-msgs "$LAT_MSGS"
stop "$PID"

echo "== echo floor: $IDLE_N idle sockets (no rooms: coder/websocket and one goroutine per socket)" >&2
start floor-e .bin/wsfloor
ws echofloor idle -url "ws://${URL#http://}" -path-fmt '/echo?room=%s&name=%s' -no-join -n "$IDLE_N" -rooms "$ROOMS" -pid "$PID" -settle "${SETTLE}s"
stop "$PID"

echo "== floor: $IDLE_N idle sockets" >&2
start floor-i .bin/wsfloor
ws floor idle -url "ws://${URL#http://}" -path-fmt '/room/%s?name=%s' -n "$IDLE_N" -rooms "$ROOMS" -pid "$PID" -settle "${SETTLE}s"
stop "$PID"

echo "== dowasm: $IDLE_N idle sockets" >&2
start_dowasm dowasm-i
ws dowasm idle -url "ws://${URL#http://}" -path-fmt '/cursors/%s/ws?name=%s' -n "$IDLE_N" -rooms "$ROOMS" -pid "$PID" -stats "$URL/_dowasm/stats" -settle "${SETTLE}s"
stop "$PID"

cat "$tmp/results"
echo
echo "dowasm ($guestName cursors, durability full, idle_timeout 1s) vs bare coder/websocket floor, same run:"
awk '
function kv(line, k,   i, f) { for (i = 2; i <= NF; i++) { split($i, f, "="); if (f[1] == k) return f[2] }; return "" }
{ label = $1; mode = kv($0, "mode") }
mode == "echo" { echo = kv($0, "round_trips_per_s") }
mode == "broadcast" {
  key = kv($0, "senders") "x" kv($0, "window")
  if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
  rate[label, key] = kv($0, "deliveries_per_s"); p50[label, key] = kv($0, "p50_us"); p99[label, key] = kv($0, "p99_us")
  scpu[label, key] = kv($0, "server_cpu_ns_per_delivery"); ccpu[label, key] = kv($0, "client_cpu_ns_per_delivery")
  n = kv($0, "n")
}
mode == "idle" {
  bps[label] = kv($0, "bytes_per_socket"); bpc[label] = kv($0, "bytes_per_socket_connected")
  before[label] = kv($0, "rss_before"); after[label] = kv($0, "rss_idle"); nidle = kv($0, "n"); rooms = kv($0, "rooms"); hib = kv($0, "hibernated_after_s")
}
END {
  printf "floor echo (16 connections, move-sized messages): %d round trips/s\n\n", echo
  printf "| broadcast, %d sockets in one room | floor | dowasm | dowasm/floor |\n|---|---|---|---|\n", n
  for (i = 1; i <= nk; i++) {
    k = order[i]; split(k, a, "x")
    what = (a[2] == "all") ? "1 sender, one move at a time (next once all have it)" : sprintf("%d sender(s), window %d", a[1], a[2])
    printf "| %s: deliveries/s | %d | %d | %.2f |\n", what, rate["floor", k], rate["dowasm", k], rate["dowasm", k] / rate["floor", k]
    printf "| %s: p50 latency | %.2f ms | %.2f ms | %.2f |\n", what, p50["floor", k] / 1000, p50["dowasm", k] / 1000, p50["dowasm", k] / p50["floor", k]
    printf "| %s: p99 latency | %.2f ms | %.2f ms | %.2f |\n", what, p99["floor", k] / 1000, p99["dowasm", k] / 1000, p99["dowasm", k] / p99["floor", k]
    printf "| %s: server CPU per delivery | %.2f µs | %.2f µs | %.2f |\n", what, scpu["floor", k] / 1000, scpu["dowasm", k] / 1000, scpu["dowasm", k] / scpu["floor", k]
    printf "| %s: client CPU per delivery | %.2f µs | %.2f µs | |\n", what, ccpu["floor", k] / 1000, ccpu["dowasm", k] / 1000
  }
  printf "\n| %d idle sockets in %d rooms | echo floor | hub floor | dowasm | dowasm/echo floor | dowasm/hub floor |\n|---|---|---|---|---|---|\n", nidle, rooms
  printf "| server RSS before -> idle | %.1f -> %.1f MB | %.1f -> %.1f MB | %.1f -> %.1f MB | | |\n", before["echofloor"] / 1e6, after["echofloor"] / 1e6, before["floor"] / 1e6, after["floor"] / 1e6, before["dowasm"] / 1e6, after["dowasm"] / 1e6
  printf "| bytes per idle socket (dowasm: rooms hibernated after %ss) | %d | %d | %d | %.2f | %.2f |\n", hib, bps["echofloor"], bps["floor"], bps["dowasm"], bps["dowasm"] / bps["echofloor"], bps["dowasm"] / bps["floor"]
  printf "| bytes per socket, right after the joins | %d | %d | %d | %.2f | %.2f |\n", bpc["echofloor"], bpc["floor"], bpc["dowasm"], bpc["dowasm"] / bpc["echofloor"], bpc["dowasm"] / bpc["floor"]
}' "$tmp/results"

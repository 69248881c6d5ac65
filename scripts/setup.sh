#!/usr/bin/env bash
# Installs what dowasm needs beyond Go, idempotently: a C compiler for SQLite (cgo). Benchmarks
# also want wrk (`scripts/setup.sh bench`).
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if [ "${1:-}" = bench ]; then
  command -v wrk >/dev/null || need+=(wrk)
  command -v curl >/dev/null || need+=(curl)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
go version
go mod download

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
  bash "$(dirname "$0")/apt-install.sh" setup "${need[@]}"
fi
go version
go mod download

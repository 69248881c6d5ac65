#!/usr/bin/env bash
# Builds dowasm and serves the classes of dowasm.yaml (`./task counter`); arguments go to
# `dowasm run` (e.g. --listen 127.0.0.1:0). The server replaces this script (exec), so a signal
# sent to it (or to the ./task that ran it) stops the server gracefully, and the exit status is
# the server's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec .bin/dowasm run --config dowasm.yaml "$@"

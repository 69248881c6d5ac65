#!/usr/bin/env bash
# Builds the dowasm binary into .bin/dowasm (`./task build`; also the first step of
# `./task counter`). Needs only Go and a C compiler (scripts/setup.sh installs gcc if it is
# missing). Go's build cache makes a build with nothing changed take a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go build -o .bin/dowasm ./cli/dowasm

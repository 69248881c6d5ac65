#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME each (default 5s). A crasher fails the run
# and go test writes it to <package>/testdata/fuzz/<target>/: commit it, it stays a seed that
# every `go test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5s}
n=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target ($FUZZTIME)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/dowasm-fuzz.log 2>&1 || {
			cat /tmp/dowasm-fuzz.log
			echo "fuzz: $pkg $target found a failure (its input is under the package's testdata/fuzz/$target/)" >&2
			exit 1
		}
		n=$((n + 1))
	done
done
echo "fuzz: $n targets ran for $FUZZTIME each without a failure"

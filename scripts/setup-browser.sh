#!/usr/bin/env bash
# Installs headless Chromium and chromedriver (Debian's chromium and chromium-driver) for the
# browser test (tests/browser), idempotently: apt-install.sh skips packages that are already
# installed, so later runs only check that both programs start and print their versions.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" setup-browser chromium chromium-driver
for prog in chromium chromedriver; do
	command -v "$prog" >/dev/null || { echo "setup-browser: $prog is not on PATH" >&2; exit 1; }
	# Debian's chromium launcher script prints a harmless shell warning on stderr; show stderr
	# only when the program fails.
	if ! version=$("$prog" --version 2>/tmp/setup-browser-$$.err); then
		cat /tmp/setup-browser-$$.err >&2
		rm -f /tmp/setup-browser-$$.err
		echo "setup-browser: $prog --version failed" >&2
		exit 1
	fi
	rm -f /tmp/setup-browser-$$.err
	echo "$version"
done

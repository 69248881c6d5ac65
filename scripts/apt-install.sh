#!/usr/bin/env bash
# Usage: scripts/apt-install.sh WHO PACKAGE...
# Installs the Debian packages that are not installed yet, for the setup script WHO (named in
# messages). Setup tasks run in parallel (go-task runs a task's deps concurrently) and apt allows
# one apt-get at a time, so installs are serialized with a lock of their own instead of failing
# on apt's lock. Without root (or apt-get), prints the command to run and fails.
set -euo pipefail
who=$1
shift
missing() {
	need=()
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
	done
}
missing "$@"
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "$who: missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]}) and run this again" >&2
	exit 1
fi
exec 8>/tmp/dowasm-apt.lock
flock 8
missing "$@" # another setup may have installed them while we waited
[ ${#need[@]} -eq 0 ] && exit 0
echo "$who: installing Debian packages ${need[*]}" >&2
apt-get -o DPkg::Lock::Timeout=300 update -qq || { echo "$who: apt-get update failed" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
	{ echo "$who: apt-get install ${need[*]} failed" >&2; exit 1; }

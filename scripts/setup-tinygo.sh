#!/usr/bin/env bash
# Installs TinyGo 0.39.0 for dowasm's Go guests into .bin/, idempotently: TINYGOROOT in
# .bin/tinygo-0.39.0 and the entry point .bin/tinygo (scripts/tinygo/tinygo). TinyGo is not
# packaged for Debian 12, so it is built from its source module (fetched through the Go module
# proxy) against Debian's LLVM 19 (`go build -tags=llvm19`), and runs with the Go 1.25 standard
# library (TinyGo 0.39 accepts Go 1.19-1.25; fetched through the proxy as the toolchain
# go1.25.14). The module has none of TinyGo's git submodules (wasi-libc, compiler-rt, ...), so
# instead of the stock wasip1 target, which would build those, the install's targets/wasip1.json is
# scripts/tinygo/wasip1.json: it links Debian's wasi-libc and LLVM 19 wasm32 compiler-rt archives
# and has no scheduler (the SDK uses no goroutines). Use it as
#
#	.bin/tinygo build -target=wasip1 -buildmode=c-shared -o class.wasm .
#
# A first run takes about a minute (plus installing the Debian packages); later runs return at
# once. The install is built in a temporary directory and renamed into place, so an interrupted
# run never leaves a half install. To rebuild, remove .bin/tinygo*.
set -euo pipefail

TINYGO_VERSION=0.39.0
GO_TOOLCHAIN=go1.25.14
LLVM=19
APT_PACKAGES=(llvm-$LLVM-dev libclang-$LLVM-dev lld-$LLVM clang-$LLVM libclang-rt-$LLVM-dev-wasm32 wasi-libc binaryen)
# Files the installed TinyGo needs at run time (the target's archives and the external tools).
RUNTIME_FILES=(
	/usr/lib/wasm32-wasi/libc.a
	/usr/lib/llvm-$LLVM/lib/clang/$LLVM/lib/wasi/libclang_rt.builtins-wasm32.a
	/usr/bin/clang-$LLVM /usr/bin/wasm-ld-$LLVM /usr/bin/wasm-opt
	/usr/lib/llvm-$LLVM/lib/libLLVM.so.$LLVM.1 /usr/lib/llvm-$LLVM/lib/libclang-$LLVM.so.$LLVM
)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
support=$repo/scripts/tinygo
bin=$repo/.bin
dest=$bin/tinygo-$TINYGO_VERSION

log() { echo "tinygo: $*" >&2; }
die() { echo "tinygo: error: $*" >&2; exit 1; }

# installed reports whether the install is complete and current: the binary, the entry point and
# the target are the ones this script installs, and the system files they use are there.
installed() {
	[ -x "$dest/bin/tinygo" ] && cmp -s "$support/tinygo" "$bin/tinygo" && [ -x "$bin/tinygo" ] &&
		cmp -s "$support/wasip1.json" "$dest/targets/wasip1.json" || return 1
	local f
	for f in "${RUNTIME_FILES[@]}"; do [ -e "$f" ] || return 1; done
}
installed && exit 0

mkdir -p "$bin"
# One setup at a time (parallel tasks may start several); the second waits and finds it done.
exec 9>"$bin/.tinygo-setup.lock"
flock 9
installed && exit 0

# Debian packages: LLVM 19 to build and run TinyGo, the wasm32 libc and compiler-rt archives it
# links, binaryen's wasm-opt (TinyGo runs it on every wasm module).
# cgo compiles TinyGo's LLVM bindings (C and C++).
bash "$repo/scripts/apt-install.sh" tinygo "${APT_PACKAGES[@]}" gcc g++ libc6-dev
for f in "${RUNTIME_FILES[@]}"; do
	[ -e "$f" ] || die "$f is missing although its Debian package is installed (packages: ${APT_PACKAGES[*]})"
done
command -v go >/dev/null || die "the Go toolchain (go) is not on PATH: install Go 1.21 or newer first"

if [ ! -x "$dest/bin/tinygo" ]; then
	# Left behind by an interrupted run (the lock is ours, so no other run is using them).
	rm -rf "$bin"/.tinygo-"$TINYGO_VERSION".tmp.*
	tmp=$(mktemp -d "$bin/.tinygo-$TINYGO_VERSION.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT

	log "fetching Go $GO_TOOLCHAIN (TinyGo $TINYGO_VERSION needs Go 1.25 or older)"
	goroot=$(cd "$tmp" && GOTOOLCHAIN=$GO_TOOLCHAIN GOWORK=off GOFLAGS= go env GOROOT) ||
		die "could not fetch Go $GO_TOOLCHAIN through the Go module proxy (GOTOOLCHAIN=$GO_TOOLCHAIN go env GOROOT failed)"
	[ -x "$goroot/bin/go" ] || die "Go $GO_TOOLCHAIN has no $goroot/bin/go"

	log "fetching the TinyGo v$TINYGO_VERSION source module"
	src=$(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/tinygo-org/tinygo@v$TINYGO_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
	[ -n "$src" ] && [ -d "$src/src/runtime" ] ||
		die "could not download github.com/tinygo-org/tinygo@v$TINYGO_VERSION through the Go module proxy"

	root=$tmp/root
	cp -R "$src" "$root"
	chmod -R u+w "$root"
	# src/net is a git submodule that the module zip lacks; TinyGo replaces GOROOT's net with it,
	# so it must exist (empty: a guest cannot use package net).
	mkdir -p "$root/src/net"
	cp "$root/targets/wasip1.json" "$root/targets/wasip1-upstream.json"
	cp "$support/wasip1.json" "$root/targets/wasip1.json"
	echo "$goroot" >"$root/goroot"

	log "building v$TINYGO_VERSION against LLVM $LLVM (takes about a minute)"
	(cd "$root" && GOTOOLCHAIN=$GO_TOOLCHAIN GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=1 \
		go build -tags=llvm$LLVM -trimpath -o bin/tinygo .) >"$tmp/build.log" 2>&1 || {
		cp "$tmp/build.log" "$bin/tinygo-build.log"
		tr -s ' \t' <"$tmp/build.log" | grep -v '^ *$' | tail -n 40 | cut -c1-400 >&2
		die "building TinyGo failed (output above; the whole log is in $bin/tinygo-build.log)"
	}

	log "checking the new install with a small wasip1 module"
	mkdir -p "$tmp/check"
	cat >"$tmp/check/go.mod" <<-EOF
		module check

		go 1.24
	EOF
	cat >"$tmp/check/main.go" <<-'EOF'
		package main

		//go:wasmexport check
		func check(n int32) int32 { return n + 1 }

		func main() {}
	EOF
	(cd "$tmp/check" && TINYGOROOT=$root GOROOT=$goroot GOTOOLCHAIN=local GOWORK=off \
		PATH="$goroot/bin:/usr/lib/llvm-$LLVM/bin:$PATH" \
		"$root/bin/tinygo" build -target=wasip1 -buildmode=c-shared -o check.wasm .) >"$tmp/check.log" 2>&1 &&
		[ -s "$tmp/check/check.wasm" ] || {
		cat "$tmp/check.log" >&2
		die "the new TinyGo could not build a test module (output above)"
	}

	mv "$root" "$dest"
else
	# The binary is installed; only the target or the entry point changed.
	cp "$support/wasip1.json" "$dest/targets/.wasip1.json.tmp"
	mv -f "$dest/targets/.wasip1.json.tmp" "$dest/targets/wasip1.json"
fi
cp "$support/tinygo" "$bin/.tinygo.tmp"
chmod 755 "$bin/.tinygo.tmp"
mv -f "$bin/.tinygo.tmp" "$bin/tinygo"
installed || die "the install in $dest is incomplete"
log "installed $("$bin/tinygo" version)"

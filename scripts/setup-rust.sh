#!/usr/bin/env bash
# Installs the Rust toolchain for dowasm's Rust guests, idempotently: Debian's rustc and cargo
# (Rust 1.63) with the wasm32-unknown-unknown standard library (libstd-rust-dev-wasm32). rustup's
# compilers cannot fetch that target offline; the build uses /usr/bin/rustc even when rustup's
# comes first on PATH (see toolchain/toolchain.go).
set -euo pipefail
need=()
for p in rustc cargo libstd-rust-dev-wasm32; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup-rust: please install the Debian packages: ${need[*]}" >&2
    exit 1
  fi
  echo "setup-rust: installing ${need[*]} (Debian's Rust with the wasm32 standard library)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
/usr/bin/rustc --version

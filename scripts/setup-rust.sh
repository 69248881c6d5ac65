#!/usr/bin/env bash
# Installs the Rust toolchain for dowasm's Rust guests, idempotently: Debian's rustc and cargo
# (Rust 1.63) with the wasm32-unknown-unknown standard library (libstd-rust-dev-wasm32) and its linker. rustup's
# compilers cannot fetch that target offline; the build uses /usr/bin/rustc even when rustup's
# comes first on PATH (see toolchain/toolchain.go).
set -euo pipefail
# lld-14 is only recommended, but /usr/bin/rust-lld (the wasm32 linker) is a link to it.
bash "$(dirname "$0")/apt-install.sh" setup-rust rustc cargo libstd-rust-dev-wasm32 lld-14
/usr/bin/rustc --version

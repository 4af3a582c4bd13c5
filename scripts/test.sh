#!/usr/bin/env bash
# Runs every check and every test of the workspace against real servers.
#
#   scripts/test.sh            # services up, fmt, clippy, docs, features,
#                              # MSRV, packaging, all tests
#
# The servers (Redis single node, TLS and Cluster, PostgreSQL primary and
# streaming replica, MariaDB, dynalite) are started by scripts/services.sh,
# which installs what is missing; tests that need a server fail loudly if it
# cannot be reached. cargo-hack and the toolchains named by the library
# crates' `rust-version` are installed when missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# The crates published to crates.io; everything else is `publish = false`.
LIBRARIES=(session-core session-stores cache-aside db-router)

step "services"
# Not `eval "$(...)"` alone: that would go on with no servers when the
# script fails.
services_env=$(scripts/services.sh up)
eval "$services_env"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "each feature of each library on its own (cargo hack)"
command -v cargo-hack >/dev/null 2>&1 || cargo install cargo-hack --locked
packages=()
for p in "${LIBRARIES[@]}"; do packages+=(-p "$p"); done
cargo hack check "${packages[@]}" --each-feature --no-dev-deps

step "minimum supported Rust versions"
scripts/msrv.sh "${LIBRARIES[@]}"

step "cargo package and cargo publish --dry-run"
# The libraries are packaged together, in dependency order, each verified
# by building it from its package against the others' packaged sources.
cargo package "${packages[@]}" --locked
cargo publish "${packages[@]}" --dry-run --locked --no-verify

step "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast

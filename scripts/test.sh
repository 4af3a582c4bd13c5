#!/usr/bin/env bash
# Runs every check and every test of the workspace against real servers.
#
#   scripts/test.sh            # services up, fmt, clippy, docs, all tests
#
# The servers (Redis single node, TLS and Cluster, PostgreSQL primary and
# streaming replica, MariaDB, dynalite) are started by scripts/services.sh,
# which installs what is missing; tests that need a server fail loudly if it
# cannot be reached.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

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

step "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast

step "deploy template: cfn-lint, checkov, drift test"
# Installs its pinned tools from PyPI into .services/deploy-venv when missing.
deploy/check.sh

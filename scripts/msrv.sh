#!/usr/bin/env bash
# Checks each named crate with the toolchain its `rust-version` names, so
# the declared minimum is one that really builds it.
#
#   scripts/msrv.sh session-core db-router ...
#
# Installs a missing toolchain with rustup (minimal profile). Each version
# gets its own target directory under target/msrv-<version>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ "$#" -gt 0 ] || { echo "usage: scripts/msrv.sh CRATE..." >&2; exit 2; }

# "version crate" lines for the named crates.
pairs=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json, sys
wanted = set(sys.argv[1:])
for p in json.load(sys.stdin)["packages"]:
    if p["name"] in wanted:
        if not p.get("rust_version"):
            sys.exit(p["name"] + " declares no rust-version")
        print(p["rust_version"], p["name"])
' "$@")

for version in $(printf '%s\n' "$pairs" | cut -d' ' -f1 | sort -u); do
  crates=$(printf '%s\n' "$pairs" | awk -v v="$version" '$1 == v { printf " -p %s", $2 }')
  # `rust-version = "1.89"` means 1.89.0: name the toolchain in full.
  toolchain=$version
  case $toolchain in *.*.*) ;; *) toolchain=$toolchain.0 ;; esac
  if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$toolchain" --profile minimal
  fi
  printf 'Rust %s:%s\n' "$toolchain" "$crates"
  # shellcheck disable=SC2086 # $crates is a list of flags
  cargo "+$toolchain" check $crates --all-features --locked --target-dir "target/msrv-$toolchain"
done

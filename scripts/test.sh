#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests, the sans-IO dependency check and
# a compile check of the fuzz targets. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh

# A clean clone builds once: incremental caches would only take disk space (gigabytes).
if [ -n "${CI:-}" ]; then
    export CARGO_INCREMENTAL=0
fi

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken links and missing docs are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "the protocol core stays sans-IO (no OS, async or socket crates among its dependencies)"
forbidden=$(cargo tree -p tcpcrypt-proto -e normal --prefix none --locked \
    | awk '{print $1}' | grep -E '^(libc|tokio|mio|nix|socket2|getrandom|async-std)$' | sort -u || true)
if [ -n "$forbidden" ]; then
    echo "tcpcrypt-proto depends on: $forbidden" >&2
    exit 1
fi
echo "ok: no forbidden dependency"

step "fuzz targets compile"
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet

step "cargo test --workspace"
cargo test --workspace --locked

#!/usr/bin/env bash
# The project's main job, for now: two tcpcrypt endpoints negotiate TCP-ENO and run tcpcrypt in
# memory (no network, no root), and print the negotiated TEP, AEAD, roles and both session IDs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
cargo run --release --locked --quiet -p tcpcrypt-demo -- "$@"

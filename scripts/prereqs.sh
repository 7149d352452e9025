#!/usr/bin/env bash
# Installs what building and testing need, through the system's package manager, when missing.
# Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

need_pkgs=()
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)

if ((${#need_pkgs[@]})); then
    if command -v apt-get >/dev/null 2>&1; then
        echo "prereqs: installing ${need_pkgs[*]} with apt-get" >&2
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}"
    else
        echo "prereqs: please install: ${need_pkgs[*]} (no apt-get on this system)" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "prereqs: cargo not found. Install the Rust toolchain (https://rustup.rs), 1.85 or newer." >&2
        exit 1
    fi
fi

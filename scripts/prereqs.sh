#!/usr/bin/env bash
# Installs what building and testing need, through the system's package manager, when missing.
# Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

need_pkgs=()
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v c++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
# tcpcrypt-sys tests: firewall rules (iptables and ip6tables come in one package), namespaces,
# policy routing, packet capture, and setpriv (util-linux) for the unprivileged-run test.
{ command -v iptables >/dev/null 2>&1 && command -v ip6tables >/dev/null 2>&1; } || need_pkgs+=(iptables)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v setpriv >/dev/null 2>&1 || need_pkgs+=(util-linux)
# tcpcrypt-netsim's middlebox: turn veth offloads off so segments stay within the MTU.
command -v ethtool >/dev/null 2>&1 || need_pkgs+=(ethtool)
# tcpcrypt-sys build.rs: the BPF option path's sock_ops program (clang, and libbpf's
# bpf_helpers.h from libbpf-dev).
command -v clang >/dev/null 2>&1 || need_pkgs+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || need_pkgs+=(libbpf-dev)
# demo.sh: an unmodified client (python3, above, is the server).
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)

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

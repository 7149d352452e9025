//! Helpers of the root tests: root check, commands, host-state snapshots.
#![allow(dead_code, unreachable_pub)]

use std::process::Command;

use tcpcrypt_sys::caps::Privileges;
use tcpcrypt_sys::netns::NetNs;

pub mod hosts;
pub mod inspect;
pub mod queue_hook;
pub mod routed;

/// Fails (never skips) when the test cannot do its job without root.
pub fn require_root() {
    let p = Privileges::current().expect("read /proc/self/status");
    assert!(
        p.has_net_admin(),
        "this test needs root (CAP_NET_ADMIN) for network namespaces and firewall rules; \
         run it as root: `sudo -E cargo test -p tcpcryptd` (CI runs as root)"
    );
}

/// A fresh namespace, deleted when dropped.
pub fn netns(prefix: &str) -> NetNs {
    require_root();
    NetNs::create_unique(prefix).expect("create a network namespace (ip netns add)")
}

/// Runs a command in the calling thread's namespace, asserts success, returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e} (see scripts/prereqs.sh)"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// iptables-save/ip6tables-save (without counters and comments), ip rules and every routing
/// table: what the daemon must leave as it found it.
pub fn snapshot() -> String {
    let mut s = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        // One block per table; iptables-nft leaves empty built-in tables behind once used
        // (the guide: do not delete them), so a table without rules or own chains is skipped.
        let mut block = String::new();
        for line in sh(&[tool]).lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = match line.rfind(" [") {
                Some(i) if line.starts_with(':') => &line[..i],
                _ => line,
            };
            block.push_str(line);
            block.push('\n');
            if line == "COMMIT" {
                let builtin_only = block
                    .lines()
                    .all(|l| !l.starts_with("-A") && !is_own_chain(l));
                if !builtin_only {
                    s.push_str(&block);
                }
                block.clear();
            }
        }
    }
    for args in [
        &["ip", "-4", "rule"][..],
        &["ip", "-6", "rule"],
        &["ip", "-4", "route", "show", "table", "all"],
        &["ip", "-6", "route", "show", "table", "all"],
    ] {
        // Link-local routes appear by themselves once a veth's IPv6 address is ready.
        for line in sh(args).lines().filter(|l| !l.contains("fe80::")) {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

/// A chain declaration of a user chain (":NAME - [..]" after the counters were cut).
fn is_own_chain(line: &str) -> bool {
    line.starts_with(':') && line.ends_with(" -")
}

//! The rules mechanism against the real iptables/ip6tables/ip, each test in its own namespace:
//! install and remove leave `iptables-save`, `ip6tables-save`, `ip rule` and `ip route show
//! table all` exactly as before (with foreign rules around), installing is idempotent after a
//! crash, and failures name their cause.

mod common;

use tcpcrypt_sys::rules::{Family, Hook, RuleSet, RulesError, Table, Tools};

/// A set shaped like the recipes' client and server sides (NFQUEUE, REDIRECT, REJECT, TPROXY,
/// policy routing), both families.
fn recipe_like_set() -> RuleSet {
    let mut set = RuleSet::new("TCT_");
    for (fam, lo, any) in [
        (Family::V4, "127.0.0.1", "0.0.0.0/0"),
        (Family::V6, "::1", "::/0"),
    ] {
        set.chain(fam, Table::Mangle, Hook::Output, "MOUT")
            .rule(&["-m", "mark", "--mark", "0x1/0x1", "-j", "RETURN"])
            .rule(&["-o", "lo", "-j", "RETURN"])
            .rule(&[
                "-p",
                "tcp",
                "--syn",
                "--dport",
                "8080:8099",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "10",
                "--queue-bypass",
            ]);
        set.chain(fam, Table::Nat, Hook::Output, "NOUT").rule(&[
            "-p",
            "tcp",
            "-m",
            "mark",
            "--mark",
            "0x4/0x4",
            "-j",
            "REDIRECT",
            "--to-ports",
            "9000",
        ]);
        set.chain(fam, Table::Filter, Hook::Output, "FOUT").rule(&[
            "-p",
            "tcp",
            "-m",
            "mark",
            "--mark",
            "0x8/0x8",
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ]);
        set.chain(fam, Table::Raw, Hook::Prerouting, "RPRE")
            .rule(&["-i", "lo", "-j", "RETURN"]);
        set.chain(fam, Table::Mangle, Hook::Prerouting, "MPRE")
            .rule(&[
                "-i",
                "lo",
                "-p",
                "tcp",
                "--syn",
                "-m",
                "mark",
                "--mark",
                "0x4/0x4",
                "-j",
                "TPROXY",
                "--on-port",
                "9001",
                "--on-ip",
                lo,
            ]);
        set.ip_rule(fam, 110, &["fwmark", "0x4/0x4"], 101);
        set.route(fam, 101, &["local", any, "dev", "lo"]);
    }
    set
}

/// Foreign rules in every built-in chain used, and a foreign ip rule and route.
fn add_foreign_state() {
    for tool in ["iptables", "ip6tables"] {
        for (table, chains) in [
            ("raw", &["PREROUTING", "OUTPUT"][..]),
            ("mangle", &["PREROUTING", "OUTPUT"]),
            ("nat", &["OUTPUT", "PREROUTING"]),
            ("filter", &["INPUT", "OUTPUT"]),
        ] {
            for chain in chains {
                common::sh(&[
                    tool, "-w", "-t", table, "-A", chain, "-p", "udp", "--dport", "9", "-j",
                    "ACCEPT",
                ]);
            }
        }
    }
    common::sh(&[
        "ip", "-4", "rule", "add", "pref", "200", "fwmark", "0x100", "lookup", "200",
    ]);
    common::sh(&[
        "ip", "-6", "rule", "add", "pref", "200", "fwmark", "0x100", "lookup", "200",
    ]);
    common::sh(&[
        "ip",
        "-4",
        "route",
        "add",
        "local",
        "0.0.0.0/0",
        "dev",
        "lo",
        "table",
        "200",
    ]);
}

fn first_rule(tool: &str, table: &str, chain: &str) -> String {
    common::sh(&[tool, "-w", "-t", table, "-S", chain])
        .lines()
        .find(|l| l.starts_with("-A "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn install_remove_round_trip_leaves_state_identical() {
    let ns = common::netns();
    ns.run(|| {
        add_foreign_state();
        let before = common::snapshot();
        let set = recipe_like_set();

        // A crashed daemon's leftovers, then a fresh install over them: no duplicates.
        set.install().unwrap().leak();
        let guard = set.install().unwrap();
        for (tool, table, chain, ours) in [
            ("iptables", "mangle", "OUTPUT", "TCT_MOUT"),
            ("iptables", "nat", "OUTPUT", "TCT_NOUT"),
            ("iptables", "filter", "OUTPUT", "TCT_FOUT"),
            ("iptables", "raw", "PREROUTING", "TCT_RPRE"),
            ("ip6tables", "mangle", "PREROUTING", "TCT_MPRE"),
        ] {
            assert_eq!(
                first_rule(tool, table, chain),
                format!("-A {chain} -j {ours}")
            );
            let jumps = common::sh(&[tool, "-w", "-t", table, "-S", chain]);
            assert_eq!(jumps.matches(&format!("-j {ours}")).count(), 1, "{jumps}");
        }
        let rules = common::sh(&["ip", "-6", "rule"]);
        assert_eq!(rules.matches("110:").count(), 1, "{rules}");
        assert!(common::sh(&["ip", "-4", "route", "show", "table", "101"])
            .contains("local default dev lo"));

        // A foreign rule and ip rule added while ours are installed must survive removal.
        common::sh(&[
            "iptables", "-w", "-t", "filter", "-A", "OUTPUT", "-p", "udp", "--dport", "7", "-j",
            "ACCEPT",
        ]);
        common::sh(&[
            "ip", "-4", "rule", "add", "pref", "300", "fwmark", "0x200", "lookup", "300",
        ]);
        guard.remove().unwrap();

        let after = common::snapshot();
        let later: Vec<&str> = after
            .lines()
            .filter(|l| l.contains("--dport 7 ") || l.contains("lookup 300"))
            .collect();
        assert_eq!(
            later.len(),
            2,
            "the later foreign rules are still there: {later:?}"
        );
        let without_later: String = after
            .lines()
            .filter(|l| !(l.contains("--dport 7 ") || l.contains("lookup 300")))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            without_later, before,
            "removal restored the previous state exactly"
        );
    })
    .unwrap();
}

#[test]
fn dropping_the_guard_removes_the_rules() {
    let ns = common::netns();
    ns.run(|| {
        add_foreign_state();
        let before = common::snapshot();
        {
            let _guard = recipe_like_set().install().unwrap();
            assert_ne!(common::snapshot(), before);
        }
        assert_eq!(common::snapshot(), before);
        // Removing leftovers when there are none is fine.
        recipe_like_set().remove_leftovers().unwrap();
        assert_eq!(common::snapshot(), before);
    })
    .unwrap();
}

#[test]
fn failed_install_undoes_what_it_added() {
    let ns = common::netns();
    ns.run(|| {
        add_foreign_state();
        let before = common::snapshot();
        let mut set = recipe_like_set();
        set.chain(Family::V4, Table::Filter, Hook::Input, "BAD")
            .rule(&["-p", "tcp", "--no-such-option"]);
        let err = set.install().unwrap_err();
        assert!(matches!(err, RulesError::Command { .. }), "{err}");
        assert!(err.to_string().contains("--no-such-option"), "{err}");
        assert_eq!(common::snapshot(), before);
    })
    .unwrap();
}

#[test]
fn missing_iptables_says_how_to_install_it() {
    let ns = common::netns();
    ns.run(|| {
        let set = recipe_like_set().with_tools(Tools {
            iptables: "/nonexistent/iptables".into(),
            ..Tools::default()
        });
        let err = set.install().unwrap_err();
        assert!(matches!(err, RulesError::ToolMissing { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("install iptables: apt-get install iptables"),
            "{err}"
        );
    })
    .unwrap();
}

#[test]
fn unprivileged_iptables_is_reported_as_not_permitted() {
    let ns = common::netns();
    // Real iptables/ip run without privileges (setpriv to nobody): the classifier must see
    // the permission problem in what they print.
    let dir = std::env::temp_dir().join(format!("tcpcrypt-sys-unpriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tools = Tools::default();
    for (name, slot) in [("iptables", &mut tools.iptables), ("ip", &mut tools.ip)] {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {name} \"$@\"\n"),
        )
        .unwrap();
        common::sh(&["chmod", "+x", path.to_str().unwrap()]);
        *slot = path.to_str().unwrap().to_owned();
    }
    ns.run(|| {
        let mut v4 = RuleSet::new("TCU_").with_tools(tools.clone());
        v4.chain(Family::V4, Table::Mangle, Hook::Output, "MOUT")
            .rule(&["-j", "RETURN"]);
        let err = v4.install().unwrap_err();
        assert!(matches!(err, RulesError::NotPermitted { .. }), "{err}");
        let mut ip_only = RuleSet::new("TCU_").with_tools(tools.clone());
        ip_only.ip_rule(Family::V4, 110, &["fwmark", "0x4/0x4"], 101);
        let err = ip_only.install().unwrap_err();
        assert!(matches!(err, RulesError::NotPermitted { .. }), "{err}");
    })
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Root test: the daemon's full rule set (both roles, v4 and v6) installs in a fresh network
//! namespace (the kernel accepts every match and target: connbytes, connmark, TPROXY, NFQUEUE,
//! MARK, CONNMARK, REJECT) and its removal leaves the namespace exactly as before, foreign rules kept.

mod common;

use clap::Parser;
use tcpcryptd::config::Cli;
use tcpcryptd::rules::Plan;

#[test]
fn rule_set_installs_and_removes_cleanly_next_to_foreign_rules() {
    let ns = common::netns("tcpcryptd-rules");
    ns.run(|| {
        // Foreign state that must survive.
        common::sh(&[
            "iptables", "-w", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-j", "ACCEPT",
        ]);
        common::sh(&[
            "ip6tables",
            "-w",
            "-t",
            "raw",
            "-A",
            "PREROUTING",
            "-p",
            "udp",
            "-j",
            "ACCEPT",
        ]);
        common::sh(&[
            "ip", "-4", "rule", "add", "pref", "200", "fwmark", "0x40", "lookup", "200",
        ]);
        let before = common::snapshot();
        let config = Cli::try_parse_from(["tcpcryptd"]).unwrap().load().unwrap();
        let set = Plan::new(&config).rule_set("TT_");
        let installed = set.install().expect("install the rule set");
        let during = common::snapshot();
        assert!(during.contains("-A TT_C_MOUT"), "{during}");
        assert!(
            during.contains("TPROXY --on-port 4761 --on-ip ::1"),
            "{during}"
        );
        assert!(during.contains("connbytes"), "{during}");
        assert!(during.contains("from 127.0.0.1 lookup 100"), "{during}");
        // Installing again (a crashed daemon's leftovers) replaces instead of duplicating.
        let again = set.install().expect("install over leftovers");
        assert_eq!(common::snapshot(), during);
        installed.leak();
        again.remove().expect("remove the rule set");
        assert_eq!(common::snapshot(), before);
    })
    .expect("enter the namespace");
}

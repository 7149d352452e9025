//! The daemon's iptables/ip6tables chains and policy routing, built from the configuration
//! (the validated recipes of the project's kernel guide: 1b client hold with 1c TPROXY over a
//! loopback policy route, 2/2a server raw-PREROUTING decision + TPROXY, 2b variant S6, 2c
//! refusal, 4 fail-open, 5 coexistence).
//!
//! Marks (defaults; all configurable): U 0x1 client upstream sockets · S 0x2 server→service
//! sockets · R 0x4 verdict "redirect" (to the client listener, by TPROXY; also the redirected
//! connections' connmark) · J 0x8 verdict "reject" · D 0x10 verdict "divert" (and
//! the diverted connections' connmark) · T 0x20 TPROXY · P 0x40 plain upstream, no NFQUEUE, no
//! redirect (the client proxy's retry without ENO after a type-2 failure, RFC 8547 §9; see
//! [`crate::type2_cache`]) · X 0x80 verdict and connmark "settled". Queues: `app_syn`, `eno_out`,
//! `eno_in`, `server_syn`. Every NFQUEUE rule has `--queue-bypass`: with the daemon gone,
//! connections go direct (fail-open). Only handshake segments are queued: SYNs, and the first
//! packets of intercepted connections (RFC 8547 §4.6: ENO is needed until a non-SYN segment
//! has been received), never the data that follows.
//!
//! Where a connection's queueing stops: at the segment after which its negotiation is settled
//! on this host ([`crate::syn::Handled::settled`]: decided, and the §4.6 duty to send ENO over).
//! That segment's verdict is `NF_REPEAT` with mark X added: it runs through its chain again,
//! the first rule saves X in the connmark, and every queue rule skips connmark X; so each
//! connection is queued for exactly the segments its negotiation needs (a fresh handshake: 3
//! on the client, 2 on the server, not counting the SYN queues), and no later segment can
//! overtake one still queued (the bounds below would let it: a late segment that skips the
//! queue leaves first). `connbytes` still bounds every queue rule, in case a negotiation
//! never settles.
//!
//! On the BPF option path (`--option-path bpf`, [`crate::config::OptionPath`]) the kernel
//! writes the client upstream's ENO options and the server's fresh SYN-ACK answers, and
//! records the server's completing ACK itself (`tcpcrypt_sys::bpf`), so fewer segments are
//! queued: the application's SYN (`app_syn`) and the server's SYN (`server_syn`), which need a
//! decision before they go on; the client upstream's SYN-ACK (`eno_in`), which the core must
//! check before the kernel's ACK says whether ENO was accepted; and the server's SYN-ACK
//! (`eno_out`) when its option needs more than the room the kernel leaves (a resumption
//! answer): the SYN of a connection whose SYN-ACK the program writes gets the settled mark X
//! with D in its verdict, saved in the connmark, and the `eno_out` rule skips connmark X. Both
//! SYN-ACK rules match `--tcp-flags SYN,ACK SYN,ACK`; no chain has the settled-mark pair: four
//! queued segments per resumed connection and three per fresh one, instead of about nine.
//! There, the SYN filters ([`SynFilterPaths`], `tcpcrypt_sys::syn_filters`,
//! xt_bpf matches) also keep two kinds of SYN out of the queues: an application's SYN to a
//! cached server without tcpcrypt ([`crate::plain_peers`]; one probe per interval is still
//! queued), and a received SYN without ENO, which the server side would only let pass.
//!
//! The one exception to fail-open is the mandatory policy: a SYN to a mandatory port or address
//! that no live daemon marked (it let it go direct, or it is dead: SIGKILL leaves the rules in
//! place and every queue then bypasses) is refused by a plain REJECT rule, so a dead daemon
//! never turns a mandatory destination into plain TCP.
//!
//! ```text
//! client (host A)
//!   mangle OUTPUT    C_MOUT: mark X → CONNMARK X; connmark X → RETURN; mark U → CONNMARK U;
//!                            mark U, not connmark X, first 6 packets → NFQUEUE eno_out;
//!                            mark U → RETURN; mark S → RETURN; mark P → RETURN;
//!                            connmark R → MARK R, RETURN;     (a redirected app's segments)
//!                            -o lo → RETURN; ! --syn → RETURN;
//!                            excluded ports → RETURN;
//!                            [BPF path] --syn, bpf cached_plain_peer → RETURN;
//!                            --syn → NFQUEUE app_syn
//!   mangle PREROUTING C_MPRE: mark X → CONNMARK X; connmark X → RETURN;
//!                            connmark U, not X, first 4 reply packets → NFQUEUE eno_in;
//!                            -i lo, --syn, mark R → TPROXY client_port (lo address)
//!   filter OUTPUT    C_FOUT: mark R → CONNMARK R;                (the app SYN's verdict)
//!                            mark J → REJECT tcp-reset           (upstream refused)
//!                            with a mandatory policy: mark U or R → RETURN; -o lo → RETURN;
//!                            --syn to a mandatory port/address → REJECT tcp-reset
//!   ip rule pref P+2 fwmark R lookup TBL; ip route local 0.0.0.0/0 (::/0) dev lo table TBL
//! server (host B)
//!   raw PREROUTING   S_RPRE: mark S → RETURN; -i lo → RETURN; ! --syn → RETURN; excluded → RETURN;
//!                            [BPF path] --syn to a mandatory port/address → NFQUEUE server_syn;
//!                                       --syn, bpf syn_without_eno → RETURN;
//!                            --syn → NFQUEUE server_syn
//!   mangle PREROUTING S_MPRE: mark X → CONNMARK X; connmark X → RETURN;
//!                            mark D → CONNMARK D; mark D → TPROXY server_port (lo address);
//!                            ! --syn, connmark D, not X, packets 2-5 → NFQUEUE eno_in
//!                            [BPF path, all of it] mark D → CONNMARK D;
//!                                       mark X → CONNMARK X; mark D → TPROXY server_port
//!   mangle OUTPUT    S_MOUT: connmark S → MARK S; mark S → CONNMARK S; mark X → CONNMARK X;
//!                            connmark X → RETURN;
//!                            connmark D, not X, first 4 reply packets → NFQUEUE eno_out
//!                            [BPF path] SYN-ACK, connmark D, not X → NFQUEUE eno_out
//!   filter INPUT     S_FIN:  mark J → REJECT tcp-reset           (mandatory port or address, no ENO)
//!                            with a mandatory policy: -i lo → RETURN; mark D → RETURN;
//!                            --syn to a mandatory port/address → REJECT tcp-reset
//!   ip rule pref P fwmark S lookup TBL; pref P+1 from 127.0.0.1 (::1) lookup TBL;
//!   ip route local 0.0.0.0/0 (::/0) dev lo table TBL
//! ```
//!
//! Why S6 (the service is reached at 127.0.0.1/::1 from a transparent socket bound to the
//! client's address) and not S1 (an alternative local address): S6 needs no address added to
//! `lo`, so the only host state is the rule set, which the guard removes; the service logs the
//! real client address either way. A service bound only to a specific non-loopback address is
//! not reachable this way: the pre-connect is refused and the daemon then passes the SYN
//! through undiverted (plain TCP, or the kernel's own RST if nothing listens). The `from
//! 127.0.0.1` rule is what makes IPv4 work (S5 fails without it: the SYN-ACK from 127.0.0.1 to
//! a non-local address has no route before mangle OUTPUT can reroute it).
//!
//! Why TPROXY (1c) and not REDIRECT (1b) on the client side: REDIRECT NATs every application
//! connection onto one tuple per source port (app:port → 127.0.0.1:client_port), whatever its
//! destination, so the TIME_WAIT the listener's side keeps after a connection (the daemon
//! closes first when the server did) is met by the next connection from that port to *any*
//! destination: with a foreign sequence number and timestamp it is answered by a challenge
//! ACK, the application resets and retransmits its SYN (13-15 ms later here, 1-2% of the
//! connections after a connection-rate run), and NAT sometimes remaps the port. With TPROXY
//! the accepted socket is (original destination, app:port) itself, as for plain TCP: no NAT, no
//! remapping, and TIME_WAIT only meets a later connection to the same destination, which TCP
//! accepts as usual.

use tcpcrypt_sys::rules::{Family, Hook, RuleSet, Table};

use crate::config::{Config, OptionPath};

/// One chain of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPlan {
    /// iptables or ip6tables.
    pub family: Family,
    /// Its table.
    pub table: Table,
    /// The built-in chain that jumps to it.
    pub hook: Hook,
    /// Name after the prefix.
    pub suffix: &'static str,
    /// Each rule's arguments after `-A <chain>`.
    pub rules: Vec<Vec<String>>,
}

/// The rule set as plain data (tested without root), turned into a [`RuleSet`] to install.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Chains.
    pub chains: Vec<ChainPlan>,
    /// `ip rule` entries: family, preference, selector, table.
    pub ip_rules: Vec<(Family, u32, Vec<String>, u32)>,
    /// `ip route` entries: family, table, route.
    pub routes: Vec<(Family, u32, Vec<String>)>,
}

/// Where the SYN filters (`tcpcrypt_sys::syn_filters`) are pinned while the rules are added:
/// with them, the SYN queue rules are preceded by xt_bpf matches that let the SYNs the daemon
/// has nothing to decide about go on unqueued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynFilterPaths {
    /// Client side: an application's SYN to a cached server without tcpcrypt
    /// ([`crate::plain_peers`]) goes direct.
    pub cached_plain_peer: String,
    /// Server side: a SYN without ENO goes on to the service, undiverted.
    pub syn_without_eno: String,
}

impl SynFilterPaths {
    /// Placeholders for `--print-rules` (the real paths exist only while the rules are added).
    pub fn placeholders() -> Self {
        Self {
            cached_plain_peer: "BPFFS/tcpcryptd-PID-N/cached_plain_peer".to_owned(),
            syn_without_eno: "BPFFS/tcpcryptd-PID-N/syn_without_eno".to_owned(),
        }
    }
}

impl Plan {
    /// The plan for `config`: client and/or server side, IPv4 and (if enabled) IPv6.
    pub fn new(config: &Config) -> Self {
        Self::with_syn_filters(config, None)
    }

    /// [`Plan::new`], with the SYN filters' matches if `filters` names them.
    pub fn with_syn_filters(config: &Config, filters: Option<&SynFilterPaths>) -> Self {
        let mut plan = Self::default();
        let families: &[Family] = if config.ipv6 {
            &[Family::V4, Family::V6]
        } else {
            &[Family::V4]
        };
        for &family in families {
            if config.client {
                plan.client(config, family, filters);
            }
            if config.server {
                plan.server(config, family, filters);
            }
        }
        plan
    }

    /// The installable rule set, chains named `<prefix><suffix>`.
    pub fn rule_set(&self, prefix: &str) -> RuleSet {
        let mut set = RuleSet::new(prefix);
        for c in &self.chains {
            let chain = set.chain(c.family, c.table, c.hook, c.suffix);
            for rule in &c.rules {
                let args: Vec<&str> = rule.iter().map(String::as_str).collect();
                chain.rule(&args);
            }
        }
        for (family, table, route) in &self.routes {
            let args: Vec<&str> = route.iter().map(String::as_str).collect();
            set.route(*family, *table, &args);
        }
        for (family, pref, selector, table) in &self.ip_rules {
            let args: Vec<&str> = selector.iter().map(String::as_str).collect();
            set.ip_rule(*family, *pref, &args, *table);
        }
        set
    }

    /// The plan as shell commands (for `--print-rules` and the docs).
    pub fn render(&self, prefix: &str) -> String {
        let mut out = String::new();
        for c in &self.chains {
            let tool = tool(c.family);
            let table = table_name(c.table);
            let name = format!("{prefix}{}", c.suffix);
            out.push_str(&format!("{tool} -t {table} -N {name}\n"));
            for rule in &c.rules {
                out.push_str(&format!("{tool} -t {table} -A {name} {}\n", rule.join(" ")));
            }
            out.push_str(&format!(
                "{tool} -t {table} -I {} 1 -j {name}\n",
                hook_name(c.hook)
            ));
        }
        for (family, table, route) in &self.routes {
            out.push_str(&format!(
                "ip {} route add {} table {table}\n",
                ip_flag(*family),
                route.join(" ")
            ));
        }
        for (family, pref, selector, table) in &self.ip_rules {
            out.push_str(&format!(
                "ip {} rule add pref {pref} {} lookup {table}\n",
                ip_flag(*family),
                selector.join(" ")
            ));
        }
        out
    }

    fn client(&mut self, c: &Config, family: Family, filters: Option<&SynFilterPaths>) {
        let m = &c.marks;
        let q = &c.queues;
        let bpf = c.option_path == OptionPath::Bpf;
        let mut mout = settled_rules(c);
        mout.push(
            args(&["-p", "tcp"])
                .mark(m.upstream)
                .then(&["-j", "CONNMARK"])
                .set(m.upstream),
        );
        if !bpf {
            mout.push(
                args(&["-p", "tcp"])
                    .mark(m.upstream)
                    .not_connmark(m.settled)
                    .connbytes("1:6", "original")
                    .queue(q.eno_out),
            );
        }
        mout.extend([
            args(&[]).mark(m.upstream).then(&["-j", "RETURN"]),
            args(&[]).mark(m.service).then(&["-j", "RETURN"]),
            // Plain retries go direct: no ENO (not queued), not redirected (no R mark). The
            // mandatory REJECT of C_FOUT still applies to them (they are never made there).
            args(&[]).mark(m.plain).then(&["-j", "RETURN"]),
            // The redirected application connection's later segments (and the listener's
            // answers): the mark routes them over lo (the fwmark rule below), to the
            // transparent client listener's socket.
            args(&[])
                .connmark(m.redirect)
                .then(&["-j", "MARK"])
                .set(m.redirect),
            args(&[]).connmark(m.redirect).then(&["-j", "RETURN"]),
            args(&["-o", "lo", "-j", "RETURN"]),
            // Below, only new connections' SYNs matter.
            args(&["-p", "tcp", "!", "--syn", "-j", "RETURN"]),
        ]);
        mout.extend(excluded(c));
        if let Some(f) = filters {
            // A cached server without tcpcrypt, its probe not due: direct, unqueued.
            mout.push(args(&["-p", "tcp", "--syn"]).bpf(&f.cached_plain_peer));
        }
        mout.push(args(&["-p", "tcp", "--syn"]).queue(q.app_syn));
        self.chain(family, Table::Mangle, Hook::Output, "C_MOUT", mout);
        let mut mpre = settled_rules(c);
        mpre.push(if bpf {
            // The upstream's SYN-ACK only: the daemon checks it before the kernel's ACK, whose
            // `45 02` (or its absence) the BPF program then writes.
            args(&["-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK"])
                .connmark(m.upstream)
                .queue(q.eno_in)
        } else {
            args(&["-p", "tcp"])
                .connmark(m.upstream)
                .not_connmark(m.settled)
                .connbytes("1:4", "reply")
                .queue(q.eno_in)
        });
        // Only the SYN: the listener's SYN-ACK to the application carries the mark too, and
        // TPROXY would find the application's own socket and drop it (recipe 1c).
        mpre.push(
            args(&["-i", "lo", "-p", "tcp", "--syn"])
                .mark(m.redirect)
                .tproxy(c.client_port, family),
        );
        self.chain(family, Table::Mangle, Hook::Prerouting, "C_MPRE", mpre);
        let mut fout = vec![
            // The verdict's mark, for the connection's later segments (C_MOUT).
            args(&["-p", "tcp"])
                .mark(m.redirect)
                .then(&["-j", "CONNMARK"])
                .set(m.redirect),
            reject(m.reject),
        ];
        let refuse = mandatory_rejects(c, family);
        if !refuse.is_empty() {
            fout.push(args(&[]).mark(m.upstream).then(&["-j", "RETURN"]));
            fout.push(args(&[]).mark(m.redirect).then(&["-j", "RETURN"]));
            fout.push(args(&["-o", "lo", "-j", "RETURN"]));
            fout.extend(refuse);
        }
        self.chain(family, Table::Filter, Hook::Output, "C_FOUT", fout);
        self.local_route(family, c.route_table);
        self.ip_rules.push((
            family,
            c.rule_pref + 2,
            vec!["fwmark".to_owned(), mask(m.redirect)],
            c.route_table,
        ));
    }

    /// `local 0.0.0.0/0 (::/0) dev lo` in `table`: every address is local for the packets the
    /// fwmark rules send there (both roles share it).
    fn local_route(&mut self, family: Family, table: u32) {
        let any = match family {
            Family::V4 => "0.0.0.0/0",
            Family::V6 => "::/0",
        };
        let route: Vec<String> = ["local", any, "dev", "lo"].map(str::to_owned).to_vec();
        let entry = (family, table, route);
        if !self.routes.contains(&entry) {
            self.routes.push(entry);
        }
    }

    fn server(&mut self, c: &Config, family: Family, filters: Option<&SynFilterPaths>) {
        let m = &c.marks;
        let q = &c.queues;
        let mut rpre = vec![
            args(&[]).mark(m.service).then(&["-j", "RETURN"]),
            args(&["-i", "lo", "-j", "RETURN"]),
            // Below, only new connections' SYNs matter.
            args(&["-p", "tcp", "!", "--syn", "-j", "RETURN"]),
        ];
        rpre.extend(excluded(c));
        if let Some(f) = filters {
            // A mandatory destination's SYN goes to the daemon, which refuses it without ENO
            // (and counts nothing), so that the filter counts only SYNs that go plain.
            rpre.extend(
                mandatory_syns(c, family)
                    .into_iter()
                    .map(|r| r.queue(q.server_syn)),
            );
            // No ENO: nothing to divert.
            rpre.push(args(&["-p", "tcp", "--syn"]).bpf(&f.syn_without_eno));
        }
        rpre.push(args(&["-p", "tcp", "--syn"]).queue(q.server_syn));
        self.chain(family, Table::Raw, Hook::Prerouting, "S_RPRE", rpre);
        let tproxy_mark = mask(m.tproxy);
        let bpf = c.option_path == OptionPath::Bpf;
        let mut mpre = settled_rules(c);
        mpre.push(
            args(&["-p", "tcp"])
                .mark(m.divert)
                .then(&["-j", "CONNMARK"])
                .set(m.divert),
        );
        if bpf {
            // The program writes this connection's SYN-ACK: it skips the eno_out queue.
            mpre.push(
                args(&["-p", "tcp"])
                    .mark(m.settled)
                    .then(&["-j", "CONNMARK"])
                    .set(m.settled),
            );
        }
        mpre.push(
            args(&["-p", "tcp"])
                .mark(m.divert)
                .tproxy(c.server_port, family)
                .then(&["--tproxy-mark", &tproxy_mark]),
        );
        if !bpf {
            mpre.push(
                args(&["-p", "tcp", "!", "--syn"])
                    .connmark(m.divert)
                    .not_connmark(m.settled)
                    .connbytes("2:5", "original")
                    .queue(q.eno_in),
            );
        }
        self.chain(family, Table::Mangle, Hook::Prerouting, "S_MPRE", mpre);
        let mut mout = vec![
            args(&[])
                .connmark(m.service)
                .then(&["-j", "MARK"])
                .set(m.service),
            args(&[])
                .mark(m.service)
                .then(&["-j", "CONNMARK"])
                .set(m.service),
        ];
        mout.extend(settled_rules(c));
        mout.push(if bpf {
            // The SYN-ACK only, and only when the program does not write it (its option needs
            // more than the room the kernel leaves: see tcpcrypt_sys::bpf).
            args(&["-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN,ACK"])
                .connmark(m.divert)
                .not_connmark(m.settled)
                .queue(q.eno_out)
        } else {
            args(&["-p", "tcp"])
                .connmark(m.divert)
                .not_connmark(m.settled)
                .connbytes("1:4", "reply")
                .queue(q.eno_out)
        });
        self.chain(family, Table::Mangle, Hook::Output, "S_MOUT", mout);
        let mut fin = vec![reject(m.reject)];
        let refuse = mandatory_rejects(c, family);
        if !refuse.is_empty() {
            fin.push(args(&["-i", "lo", "-j", "RETURN"]));
            fin.push(args(&[]).mark(m.divert).then(&["-j", "RETURN"]));
            fin.extend(refuse);
        }
        self.chain(family, Table::Filter, Hook::Input, "S_FIN", fin);
        self.local_route(family, c.route_table);
        self.ip_rules.push((
            family,
            c.rule_pref,
            vec!["fwmark".to_owned(), mask(m.service)],
            c.route_table,
        ));
        self.ip_rules.push((
            family,
            c.rule_pref + 1,
            vec!["from".to_owned(), loopback(family).to_owned()],
            c.route_table,
        ));
    }

    fn chain(
        &mut self,
        family: Family,
        table: Table,
        hook: Hook,
        suffix: &'static str,
        rules: Vec<Rule>,
    ) {
        self.chains.push(ChainPlan {
            family,
            table,
            hook,
            suffix,
            rules: rules.into_iter().map(|r| r.0).collect(),
        });
    }
}

/// A rule under construction.
struct Rule(Vec<String>);

fn args(a: &[&str]) -> Rule {
    Rule(a.iter().map(|s| (*s).to_owned()).collect())
}

impl Rule {
    fn then(mut self, a: &[&str]) -> Self {
        self.0.extend(a.iter().map(|s| (*s).to_owned()));
        self
    }
    fn mark(self, m: u32) -> Self {
        let v = mask(m);
        self.then(&["-m", "mark", "--mark", &v])
    }
    fn connmark(self, m: u32) -> Self {
        let v = mask(m);
        self.then(&["-m", "connmark", "--mark", &v])
    }
    fn not_connmark(self, m: u32) -> Self {
        let v = mask(m);
        self.then(&["-m", "connmark", "!", "--mark", &v])
    }
    fn set(self, m: u32) -> Self {
        let v = mask(m);
        self.then(&["--set-xmark", &v])
    }
    fn connbytes(self, range: &str, dir: &str) -> Self {
        self.then(&[
            "-m",
            "connbytes",
            "--connbytes",
            range,
            "--connbytes-dir",
            dir,
            "--connbytes-mode",
            "packets",
        ])
    }
    /// TPROXY to the daemon's listener on `port` of the loopback address.
    fn tproxy(self, port: u16, family: Family) -> Self {
        let port = port.to_string();
        self.then(&[
            "-j",
            "TPROXY",
            "--on-port",
            &port,
            "--on-ip",
            loopback(family),
        ])
    }
    /// Matched by the pinned socket-filter program at `path`: RETURN.
    fn bpf(self, path: &str) -> Self {
        self.then(&["-m", "bpf", "--object-pinned", path, "-j", "RETURN"])
    }
    fn queue(self, num: u16) -> Self {
        let n = num.to_string();
        self.then(&["-j", "NFQUEUE", "--queue-num", &n, "--queue-bypass"])
    }
}

/// The settled-mark pair ([`save_settled`], [`skip_settled`]) that opens each chain with a
/// queue for established segments; none on the BPF option path, which queues no established
/// segment (and so never repeats one with the settled mark).
fn settled_rules(c: &Config) -> Vec<Rule> {
    if c.option_path == OptionPath::Bpf {
        return Vec::new();
    }
    vec![save_settled(c.marks.settled), skip_settled(c.marks.settled)]
}

/// The first rule of each chain with a queue for established segments: a segment that comes
/// back with the settled mark (`NF_REPEAT`) marks its connection, which no queue rule takes
/// any more.
fn save_settled(m: u32) -> Rule {
    args(&[]).mark(m).then(&["-j", "CONNMARK"]).set(m)
}

/// Right after [`save_settled`]: a settled connection's segments leave the chain at once (every
/// data segment of a proxied connection passes here; no later rule concerns it).
fn skip_settled(m: u32) -> Rule {
    args(&[]).connmark(m).then(&["-j", "RETURN"])
}

fn reject(m: u32) -> Rule {
    args(&["-p", "tcp"])
        .mark(m)
        .then(&["-j", "REJECT", "--reject-with", "tcp-reset"])
}

/// SYNs to the mandatory ports and (this family's) addresses, refused with a reset; the
/// caller returns first for what a live daemon marked.
fn mandatory_rejects(c: &Config, family: Family) -> Vec<Rule> {
    let refuse = ["-j", "REJECT", "--reject-with", "tcp-reset"];
    mandatory_syns(c, family)
        .into_iter()
        .map(|r| r.then(&refuse))
        .collect()
}

/// Matches for the SYNs to the mandatory ports and (this family's) addresses, without a
/// target.
fn mandatory_syns(c: &Config, family: Family) -> Vec<Rule> {
    let mut out: Vec<Rule> = c
        .mandatory_ports
        .iptables_args()
        .iter()
        .map(|p| args(&["-p", "tcp", "--syn", "--dport", p]))
        .collect();
    for &(net, len) in c.mandatory_addrs.nets() {
        if net.is_ipv4() == (family == Family::V4) {
            let net = format!("{net}/{len}");
            out.push(args(&["-p", "tcp", "--syn", "-d", &net]));
        }
    }
    out
}

fn excluded(c: &Config) -> Vec<Rule> {
    c.exclude_ports
        .iptables_args()
        .iter()
        .map(|p| args(&["-p", "tcp", "--dport", p, "-j", "RETURN"]))
        .collect()
}

fn mask(m: u32) -> String {
    format!("{m:#x}/{m:#x}")
}

/// The loopback address the listeners bind (TPROXY `--on-ip`, the S6 source rule).
pub fn loopback(family: Family) -> &'static str {
    match family {
        Family::V4 => "127.0.0.1",
        Family::V6 => "::1",
    }
}

fn tool(f: Family) -> &'static str {
    match f {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

fn ip_flag(f: Family) -> &'static str {
    match f {
        Family::V4 => "-4",
        Family::V6 => "-6",
    }
}

fn table_name(t: Table) -> &'static str {
    match t {
        Table::Raw => "raw",
        Table::Mangle => "mangle",
        Table::Nat => "nat",
        Table::Filter => "filter",
    }
}

fn hook_name(h: Hook) -> &'static str {
    match h {
        Hook::Prerouting => "PREROUTING",
        Hook::Input => "INPUT",
        Hook::Forward => "FORWARD",
        Hook::Output => "OUTPUT",
        Hook::Postrouting => "POSTROUTING",
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Cli;

    fn config(args: &[&str]) -> Config {
        let mut full = vec!["tcpcryptd"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap().load().unwrap()
    }

    #[test]
    fn both_roles_both_families() {
        let plan = Plan::new(&config(&[]));
        assert_eq!(plan.chains.len(), 2 * (3 + 4));
        assert_eq!(plan.ip_rules.len(), 6);
        assert_eq!(
            plan.routes.len(),
            2,
            "one local route per family, shared by both roles"
        );
        let text = plan.render("T_");
        for expected in [
            "iptables -t mangle -A T_C_MOUT -p tcp --syn -j NFQUEUE --queue-num 4750 --queue-bypass",
            "iptables -t mangle -A T_C_MOUT -p tcp -m mark --mark 0x1/0x1 -m connmark ! --mark \
             0x80/0x80 -m connbytes --connbytes 1:6 --connbytes-dir original --connbytes-mode \
             packets -j NFQUEUE --queue-num 4751 --queue-bypass",
            "iptables -t mangle -A T_C_MPRE -i lo -p tcp --syn -m mark --mark 0x4/0x4 -j TPROXY \
             --on-port 4760 --on-ip 127.0.0.1",
            "ip6tables -t mangle -A T_C_MPRE -i lo -p tcp --syn -m mark --mark 0x4/0x4 -j TPROXY \
             --on-port 4760 --on-ip ::1",
            "iptables -t mangle -A T_C_MOUT -m connmark --mark 0x4/0x4 -j MARK --set-xmark 0x4/0x4",
            "iptables -t filter -A T_C_FOUT -p tcp -m mark --mark 0x4/0x4 -j CONNMARK --set-xmark \
             0x4/0x4",
            "ip -4 rule add pref 102 fwmark 0x4/0x4 lookup 100",
            "ip -6 rule add pref 102 fwmark 0x4/0x4 lookup 100",
            "iptables -t filter -A T_C_FOUT -p tcp -m mark --mark 0x8/0x8 -j REJECT \
             --reject-with tcp-reset",
            "iptables -t raw -A T_S_RPRE -p tcp --syn -j NFQUEUE --queue-num 4753 --queue-bypass",
            "ip6tables -t mangle -A T_S_MPRE -p tcp -m mark --mark 0x10/0x10 -j TPROXY \
             --on-port 4761 --on-ip ::1 --tproxy-mark 0x20/0x20",
            "iptables -t mangle -A T_S_MPRE -p tcp ! --syn -m connmark --mark 0x10/0x10 -m \
             connmark ! --mark 0x80/0x80 -m connbytes --connbytes 2:5 --connbytes-dir original \
             --connbytes-mode packets -j NFQUEUE --queue-num 4752 --queue-bypass",
            "iptables -t mangle -A T_S_MOUT -m connmark --mark 0x2/0x2 -j MARK --set-xmark 0x2/0x2",
            "iptables -t filter -I INPUT 1 -j T_S_FIN",
            "iptables -t mangle -A T_C_MOUT -m mark --mark 0x40/0x40 -j RETURN",
            "ip -4 rule add pref 100 fwmark 0x2/0x2 lookup 100",
            "ip -4 rule add pref 101 from 127.0.0.1 lookup 100",
            "ip -6 rule add pref 101 from ::1 lookup 100",
            "ip -6 route add local ::/0 dev lo table 100",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        // Every queue rule is fail-open, and the excluded ports are skipped before the SYN
        // queues. Every queue of established segments skips settled connections, and its
        // chain saves the settled mark first (the repeated segment must meet that rule).
        let save = "-m mark --mark 0x80/0x80 -j CONNMARK --set-xmark 0x80/0x80";
        for c in &plan.chains {
            for r in &c.rules {
                if r.contains(&"NFQUEUE".to_owned()) {
                    assert!(r.contains(&"--queue-bypass".to_owned()), "{r:?}");
                    if r.contains(&"--connbytes".to_owned()) {
                        assert!(r.join(" ").contains("connmark ! --mark 0x80/0x80"), "{r:?}");
                        let saved = c.rules.iter().position(|r| r.join(" ") == save);
                        let queued = c.rules.iter().position(|x| x == r);
                        assert!(
                            saved.is_some() && saved < queued,
                            "{}: save before queue",
                            c.suffix
                        );
                        // And right after the save, settled connections leave the chain.
                        let skip = "-m connmark --mark 0x80/0x80 -j RETURN";
                        let skipped = c.rules.iter().position(|r| r.join(" ") == skip);
                        assert_eq!(skipped, saved.map(|i| i + 1), "{}", c.suffix);
                    }
                }
            }
        }
        let mout = &plan.chains[0];
        let ssh = mout.rules.iter().position(|r| r.contains(&"22".to_owned()));
        let syn = mout
            .rules
            .iter()
            .position(|r| r.contains(&"--syn".to_owned()) && r.contains(&"NFQUEUE".to_owned()));
        assert!(ssh.unwrap() < syn.unwrap());
        // Established segments leave before the per-port rules (one match instead of a dozen).
        let not_syn = mout
            .rules
            .iter()
            .position(|r| r.join(" ") == "-p tcp ! --syn -j RETURN");
        assert!(not_syn.is_some() && not_syn < ssh);
        let plain = mout
            .rules
            .iter()
            .position(|r| r.contains(&"0x40/0x40".to_owned()));
        assert!(
            plain.unwrap() < syn.unwrap(),
            "plain retries skip the SYN queue"
        );
    }

    #[test]
    fn the_syn_filters_precede_the_syn_queues() {
        let c = config(&["--option-path", "bpf"]);
        let paths = SynFilterPaths::placeholders();
        let plan = Plan::with_syn_filters(&c, Some(&paths));
        let text = plan.render("T_");
        for (tool, chain, path, queue) in [
            ("iptables", "T_C_MOUT", &paths.cached_plain_peer, "4750"),
            ("ip6tables", "T_C_MOUT", &paths.cached_plain_peer, "4750"),
            ("iptables", "T_S_RPRE", &paths.syn_without_eno, "4753"),
            ("ip6tables", "T_S_RPRE", &paths.syn_without_eno, "4753"),
        ] {
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.starts_with(&format!("{tool} ")) && l.contains(&format!("-A {chain} "))
                })
                .collect();
            let filter = lines
                .iter()
                .position(|l| {
                    l.ends_with(&format!(
                        "-p tcp --syn -m bpf --object-pinned {path} -j RETURN"
                    ))
                })
                .unwrap_or_else(|| panic!("{tool} {chain}: no filter rule in {lines:#?}"));
            assert!(
                lines[filter + 1].contains(&format!("--syn -j NFQUEUE --queue-num {queue}")),
                "{tool} {chain}: the filter comes right before the SYN queue: {lines:#?}"
            );
        }
        // Without them (or on the NFQUEUE path) no rule names a program.
        assert!(!Plan::new(&c).render("T_").contains("-m bpf"));

        // A mandatory destination's SYN skips the server's filter: the daemon refuses it.
        let c = config(&[
            "--option-path",
            "bpf",
            "--exclude-ports",
            "22",
            "--mandatory-ports",
            "8443",
            "--mandatory-addrs",
            "10.9.0.0/16",
        ]);
        let text = Plan::with_syn_filters(&c, Some(&paths)).render("T_");
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("iptables ") && l.contains("-A T_S_RPRE "))
            .collect();
        let filter = lines.iter().position(|l| l.contains("-m bpf")).unwrap();
        for m in ["--dport 8443", "-d 10.9.0.0/16"] {
            let queued = lines
                .iter()
                .position(|l| l.contains(m) && l.contains("-j NFQUEUE --queue-num 4753"))
                .unwrap_or_else(|| panic!("{m} not queued: {lines:#?}"));
            assert!(queued < filter, "{m} before the filter: {lines:#?}");
        }
    }

    #[test]
    fn the_bpf_option_path_queues_only_syns_and_syn_acks() {
        let plan = Plan::new(&config(&["--option-path", "bpf"]));
        let text = plan.render("T_");
        let queued: Vec<&str> = text.lines().filter(|l| l.contains("NFQUEUE")).collect();
        // Per family: the application SYN, the upstream SYN-ACK, the server SYN and SYN-ACK.
        assert_eq!(queued.len(), 8, "{queued:#?}");
        for line in &queued {
            assert!(line.contains("--syn") || line.contains("--tcp-flags SYN,ACK SYN,ACK"));
            assert!(!line.contains("connbytes"), "{line}");
        }
        assert!(text.contains(
            "iptables -t mangle -A T_C_MPRE -p tcp --tcp-flags SYN,ACK SYN,ACK -m connmark \
             --mark 0x1/0x1 -j NFQUEUE --queue-num 4752 --queue-bypass"
        ));
        // The server's SYN-ACK is queued unless the program writes it (the SYN's verdict then
        // added the settled mark, which S_MPRE saves before TPROXY ends the chain).
        assert!(text.contains(
            "iptables -t mangle -A T_S_MOUT -p tcp --tcp-flags SYN,ACK SYN,ACK -m connmark \
             --mark 0x10/0x10 -m connmark ! --mark 0x80/0x80 -j NFQUEUE --queue-num 4751 \
             --queue-bypass"
        ));
        let s_mpre: Vec<&str> = text.lines().filter(|l| l.contains("-A T_S_MPRE")).collect();
        let save = s_mpre
            .iter()
            .position(|l| l.ends_with("-m mark --mark 0x80/0x80 -j CONNMARK --set-xmark 0x80/0x80"))
            .unwrap_or_else(|| panic!("S_MPRE saves the settled mark: {s_mpre:#?}"));
        let tproxy = s_mpre.iter().position(|l| l.contains("TPROXY")).unwrap();
        assert!(save < tproxy, "{s_mpre:#?}");
        // Nothing is repeated with the settled mark (NF_REPEAT), so nothing else looks for it:
        // per family, the save (mark and connmark) and the eno_out rule.
        assert_eq!(text.matches("0x80/0x80").count(), 2 * 3, "{text}");
        // The rest of the plan is the NFQUEUE path's: same chains, rules, routes.
        let nfqueue = Plan::new(&config(&["--option-path", "nfqueue"]));
        assert_eq!(plan.chains.len(), nfqueue.chains.len());
        assert_eq!(
            (&plan.ip_rules, &plan.routes),
            (&nfqueue.ip_rules, &nfqueue.routes)
        );
        let others = |p: &Plan| -> Vec<String> {
            p.render("T_")
                .lines()
                .filter(|l| !l.contains("NFQUEUE --queue-num 475") || l.contains("--syn"))
                .filter(|l| !l.contains("0x80/0x80"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(others(&plan), others(&nfqueue));
    }

    #[test]
    fn roles_families_and_numbers_follow_the_config() {
        let plan = Plan::new(&config(&[
            "--server",
            "false",
            "--ipv6",
            "false",
            "--queue-base",
            "10",
            "--marks",
            "0x100,0x200,0x400,0x800,0x1000,0x2000",
            "--exclude-ports",
            "",
        ]));
        assert_eq!(plan.chains.len(), 3);
        assert!(plan.chains.iter().all(|c| c.family == Family::V4));
        assert_eq!((plan.ip_rules.len(), plan.routes.len()), (1, 1));
        assert!(
            !plan.render("X").contains("-t nat"),
            "no NAT on the client side"
        );
        let text = plan.render("X");
        assert!(text.contains("--queue-num 10 "), "{text}");
        assert!(text.contains("--mark 0x400/0x400 -j TPROXY"), "{text}");
        assert!(text.contains("fwmark 0x400/0x400 lookup 100"), "{text}");
        assert!(!text.contains("--dport"), "{text}");
        let server = Plan::new(&config(&["--client", "false", "--rule-pref", "300"]));
        assert!(server.chains.iter().all(|c| c.suffix.starts_with("S_")));
        assert!(server.render("X").contains("rule add pref 301 from ::1"));
        assert_eq!(server.rule_set("X").chains().len(), server.chains.len());
    }
}

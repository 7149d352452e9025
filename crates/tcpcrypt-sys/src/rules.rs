//! The daemon's own iptables/ip6tables chains and policy routing, installed and removed as one
//! unit, next to whatever rules the host already has (recipes guide, "Coexistence").
//!
//! A [`RuleSet`] is data: chains (family, table, the built-in chain that jumps to it, and the
//! rules' arguments), `ip rule`s and `ip route`s. [`RuleSet::install`]:
//! 1. removes leftovers of the same set (a crashed daemon's), so installing is idempotent;
//! 2. creates each chain (`-N`) and appends its rules (`-A`);
//! 3. adds the routes, then the ip rules;
//! 4. inserts the jumps last, at position 1 of the built-in chains (`-I OUTPUT 1 -j NAME`), so
//!    no packet sees a half-built chain.
//!
//! It returns an [`InstalledRules`] guard whose [`remove`](InstalledRules::remove) (or `Drop`)
//! undoes exactly that in reverse: delete the jumps, the ip rules, the routes, flush and delete
//! the chains. Foreign rules, tables and chains are never touched, so `iptables-save`,
//! `ip6tables-save`, `ip rule` and `ip route show table all` read as before (the built-in
//! tables that iptables-nft creates on first use stay, empty, as the guide says they must).
//!
//! The binaries are run, not linked: iptables-nft works on the target kernel with the xtables
//! targets (NFQUEUE, TPROXY, REDIRECT), and nft itself has no `queue` expression there.

use std::fmt;
use std::io;
use std::process::Command;

use crate::caps;

/// Maximum length of an iptables chain name (XT_EXTENSION_MAXNAMELEN - 1).
const MAX_CHAIN_NAME_LEN: usize = 28;
/// Bound on the "delete until it is gone" loops that clean up duplicated jumps and rules.
const MAX_DUPLICATES: usize = 16;

/// IPv4 or IPv6: which of iptables/ip6tables and `ip -4`/`ip -6` applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: `iptables`, `ip -4`.
    V4,
    /// IPv6: `ip6tables`, `ip -6`.
    V6,
}

impl Family {
    fn ip_flag(self) -> &'static str {
        match self {
            Self::V4 => "-4",
            Self::V6 => "-6",
        }
    }
}

/// An iptables table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `raw`: before conntrack (PREROUTING, OUTPUT).
    Raw,
    /// `mangle`: marks, TPROXY, NFQUEUE.
    Mangle,
    /// `nat`: REDIRECT/DNAT (only run for a connection's first packet).
    Nat,
    /// `filter`: the only table that accepts REJECT.
    Filter,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Mangle => "mangle",
            Self::Nat => "nat",
            Self::Filter => "filter",
        }
    }
}

/// A built-in chain (netfilter hook) that jumps to one of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// PREROUTING.
    Prerouting,
    /// INPUT.
    Input,
    /// FORWARD.
    Forward,
    /// OUTPUT.
    Output,
    /// POSTROUTING.
    Postrouting,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Self::Prerouting => "PREROUTING",
            Self::Input => "INPUT",
            Self::Forward => "FORWARD",
            Self::Output => "OUTPUT",
            Self::Postrouting => "POSTROUTING",
        }
    }
}

/// One of our chains: created in `table`, jumped to from `hook`, holding `rules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    family: Family,
    table: Table,
    hook: Hook,
    name: String,
    rules: Vec<Vec<String>>,
}

impl ChainSpec {
    /// Appends a rule: the arguments after `-A <chain>`, e.g.
    /// `["-p", "tcp", "--syn", "-j", "NFQUEUE", "--queue-num", "10", "--queue-bypass"]`.
    pub fn rule(&mut self, args: &[&str]) -> &mut Self {
        self.rules
            .push(args.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// The chain's full name (the set's prefix and the suffix).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An `ip rule`: `ip -4|-6 rule add pref <pref> <selector...> lookup <table>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRuleSpec {
    family: Family,
    pref: u32,
    selector: Vec<String>,
    table: u32,
}

/// An `ip route`: `ip -4|-6 route add <route...> table <table>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    family: Family,
    table: u32,
    route: Vec<String>,
}

/// The binaries run (paths or names looked up in PATH).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    /// `iptables` (iptables-nft or legacy).
    pub iptables: String,
    /// `ip6tables`.
    pub ip6tables: String,
    /// `ip` (iproute2).
    pub ip: String,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            iptables: "iptables".into(),
            ip6tables: "ip6tables".into(),
            ip: "ip".into(),
        }
    }
}

/// Why installing or removing rules failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A binary is not installed.
    #[error("`{tool}` not found: {hint}")]
    ToolMissing {
        /// The binary.
        tool: String,
        /// What to run, e.g. "install iptables: apt-get install iptables".
        hint: &'static str,
    },
    /// Not root / no CAP_NET_ADMIN.
    #[error("not permitted to change the firewall or routing: {detail}")]
    NotPermitted {
        /// The capability check's message, or the failing command and its stderr.
        detail: String,
    },
    /// The kernel has no NFQUEUE target (module `xt_NFQUEUE` / `nfnetlink_queue` missing).
    #[error(
        "the NFQUEUE target is unavailable (`{command}`: {stderr}); load it with \
         `modprobe nfnetlink_queue xt_NFQUEUE` (kernel: CONFIG_NETFILTER_XT_TARGET_NFQUEUE)"
    )]
    NfqueueUnavailable {
        /// The failing command.
        command: String,
        /// Its stderr.
        stderr: String,
    },
    /// A command failed for another reason.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// A binary could not be started for a reason other than being missing.
    #[error("run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A chain name that iptables would refuse, or two chains with one name.
    #[error("invalid chain name {0:?}: at most 28 characters of [A-Za-z0-9_-], unique per table")]
    InvalidChainName(String),
}

/// The daemon's rules: chains, ip rules and routes, all named after one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSet {
    prefix: String,
    chains: Vec<ChainSpec>,
    ip_rules: Vec<IpRuleSpec>,
    routes: Vec<RouteSpec>,
    tools: Tools,
}

impl RuleSet {
    /// An empty set whose chains are all named `<prefix><suffix>` (e.g. prefix "TCC_").
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            chains: Vec::new(),
            ip_rules: Vec::new(),
            routes: Vec::new(),
            tools: Tools::default(),
        }
    }

    /// Uses other binaries (e.g. `iptables-legacy`, or absolute paths).
    #[must_use]
    pub fn with_tools(mut self, tools: Tools) -> Self {
        self.tools = tools;
        self
    }

    /// Adds the chain `<prefix><suffix>` in `table` of `family`, jumped to from `hook`; add
    /// its rules through the returned [`ChainSpec`].
    pub fn chain(
        &mut self,
        family: Family,
        table: Table,
        hook: Hook,
        suffix: &str,
    ) -> &mut ChainSpec {
        self.chains.push(ChainSpec {
            family,
            table,
            hook,
            name: format!("{}{suffix}", self.prefix),
            rules: Vec::new(),
        });
        let last = self.chains.len() - 1;
        &mut self.chains[last]
    }

    /// Adds `ip rule add pref <pref> <selector...> lookup <table>`, e.g. selector
    /// `["fwmark", "0x4/0x4"]`.
    pub fn ip_rule(
        &mut self,
        family: Family,
        pref: u32,
        selector: &[&str],
        table: u32,
    ) -> &mut Self {
        self.ip_rules.push(IpRuleSpec {
            family,
            pref,
            selector: selector.iter().map(|s| (*s).to_owned()).collect(),
            table,
        });
        self
    }

    /// Adds `ip route add <route...> table <table>`, e.g. `["local", "0.0.0.0/0", "dev", "lo"]`.
    pub fn route(&mut self, family: Family, table: u32, route: &[&str]) -> &mut Self {
        self.routes.push(RouteSpec {
            family,
            table,
            route: route.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// The chains.
    pub fn chains(&self) -> &[ChainSpec] {
        &self.chains
    }

    /// Installs the set (see the module doc) after removing any leftover of it.
    ///
    /// # Errors
    /// [`RulesError::NotPermitted`] without CAP_NET_ADMIN, [`RulesError::ToolMissing`],
    /// [`RulesError::NfqueueUnavailable`], [`RulesError::InvalidChainName`], or the failing
    /// command. On error, whatever was installed is removed again.
    pub fn install(&self) -> Result<InstalledRules, RulesError> {
        self.validate()?;
        if let Err(e) = caps::require_net_admin() {
            return Err(RulesError::NotPermitted {
                detail: e.to_string(),
            });
        }
        self.remove_leftovers()?;
        let guard = InstalledRules {
            set: self.clone(),
            removed: false,
        };
        // From here on, a failure drops `guard`, which removes what was added.
        for chain in &self.chains {
            self.iptables(chain, &["-N", &chain.name])?;
            for rule in &chain.rules {
                let mut args = vec!["-A", chain.name.as_str()];
                args.extend(rule.iter().map(String::as_str));
                self.iptables(chain, &args)?;
            }
        }
        for route in &self.routes {
            self.ip(route.family, &route_args("add", route))?;
        }
        for rule in &self.ip_rules {
            self.ip(rule.family, &ip_rule_args("add", rule))?;
        }
        for chain in &self.chains {
            self.iptables(chain, &["-I", chain.hook.name(), "1", "-j", &chain.name])?;
        }
        Ok(guard)
    }

    /// Removes whatever of this set is present (jumps, ip rules, routes, chains), ignoring
    /// what is absent: the "remove first" step of [`install`](Self::install), also useful
    /// after a crash.
    ///
    /// # Errors
    /// Only [`RulesError::ToolMissing`], [`RulesError::NotPermitted`] and
    /// [`RulesError::Spawn`]; a missing rule or chain is not an error.
    pub fn remove_leftovers(&self) -> Result<(), RulesError> {
        let tolerate = |r: Result<(), RulesError>| match r {
            Ok(())
            | Err(RulesError::Command { .. })
            | Err(RulesError::NfqueueUnavailable { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        for chain in &self.chains {
            tolerate(self.delete_all(|| {
                self.iptables(chain, &["-D", chain.hook.name(), "-j", &chain.name])
            }))?;
        }
        for rule in &self.ip_rules {
            tolerate(self.delete_all(|| self.ip(rule.family, &ip_rule_args("del", rule))))?;
        }
        for route in &self.routes {
            tolerate(self.delete_all(|| self.ip(route.family, &route_args("del", route))))?;
        }
        for chain in &self.chains {
            tolerate(self.iptables(chain, &["-F", &chain.name]))?;
            tolerate(self.iptables(chain, &["-X", &chain.name]))?;
        }
        Ok(())
    }

    /// Removes an installed set: every item must be present once (duplicates are removed too).
    /// Runs every step even after a failure and reports the first failure.
    fn remove_installed(&self) -> Result<(), RulesError> {
        let mut first_error = None;
        let mut note = |r: Result<(), RulesError>| {
            if let Err(e) = r {
                first_error.get_or_insert(e);
            }
        };
        for chain in &self.chains {
            note(self.delete_all(|| {
                self.iptables(chain, &["-D", chain.hook.name(), "-j", &chain.name])
            }));
        }
        for rule in &self.ip_rules {
            note(self.delete_all(|| self.ip(rule.family, &ip_rule_args("del", rule))));
        }
        for route in &self.routes {
            note(self.delete_all(|| self.ip(route.family, &route_args("del", route))));
        }
        for chain in &self.chains {
            note(self.iptables(chain, &["-F", &chain.name]));
            note(self.iptables(chain, &["-X", &chain.name]));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs `delete` until it fails: Ok if it succeeded at least once, else its first error.
    fn delete_all(&self, delete: impl Fn() -> Result<(), RulesError>) -> Result<(), RulesError> {
        delete()?;
        for _ in 1..MAX_DUPLICATES {
            if delete().is_err() {
                break;
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), RulesError> {
        for (i, chain) in self.chains.iter().enumerate() {
            let name = &chain.name;
            let valid_chars = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let duplicate = self.chains[..i]
                .iter()
                .any(|c| c.name == *name && c.family == chain.family && c.table == chain.table);
            if name.is_empty() || name.len() > MAX_CHAIN_NAME_LEN || !valid_chars || duplicate {
                return Err(RulesError::InvalidChainName(name.clone()));
            }
        }
        Ok(())
    }

    fn iptables(&self, chain: &ChainSpec, args: &[&str]) -> Result<(), RulesError> {
        let tool = match chain.family {
            Family::V4 => &self.tools.iptables,
            Family::V6 => &self.tools.ip6tables,
        };
        let mut full = vec!["-w", "-t", chain.table.name()];
        full.extend_from_slice(args);
        run(tool, &full, "install iptables: apt-get install iptables")
    }

    fn ip(&self, family: Family, args: &[String]) -> Result<(), RulesError> {
        let mut full = vec![family.ip_flag()];
        full.extend(args.iter().map(String::as_str));
        run(
            &self.tools.ip,
            &full,
            "install iproute2: apt-get install iproute2",
        )
    }
}

fn ip_rule_args(verb: &str, rule: &IpRuleSpec) -> Vec<String> {
    let mut args = vec![
        "rule".to_owned(),
        verb.to_owned(),
        "pref".to_owned(),
        rule.pref.to_string(),
    ];
    args.extend(rule.selector.iter().cloned());
    args.extend(["lookup".to_owned(), rule.table.to_string()]);
    args
}

fn route_args(verb: &str, route: &RouteSpec) -> Vec<String> {
    let mut args = vec!["route".to_owned(), verb.to_owned()];
    args.extend(route.route.iter().cloned());
    args.extend(["table".to_owned(), route.table.to_string()]);
    args
}

/// Runs `tool args...`; classifies a failure (see [`classify_failure`]).
fn run(tool: &str, args: &[&str], install_hint: &'static str) -> Result<(), RulesError> {
    let command = CommandLine(tool, args).to_string();
    let output = match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RulesError::ToolMissing {
                tool: tool.to_owned(),
                hint: install_hint,
            })
        }
        Err(source) => return Err(RulesError::Spawn { command, source }),
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(classify_failure(command, output.status.to_string(), stderr))
}

/// Turns a failed command into the error that says what to do: permission problems (iptables:
/// "Permission denied (you must be root)"; ip: "Operation not permitted"), a missing NFQUEUE
/// target (appending a rule that uses NFQUEUE fails, and not for a usage error; the message
/// keeps the command's stderr), or the command and its stderr.
fn classify_failure(command: String, status: String, stderr: String) -> RulesError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("permission denied") || lower.contains("operation not permitted") {
        return RulesError::NotPermitted {
            detail: format!("`{command}`: {stderr}"),
        };
    }
    // A rule using NFQUEUE that the kernel refuses for a reason other than its syntax.
    let usage_error = ["bad argument", "unknown option", "invalid", "try `"]
        .iter()
        .any(|m| lower.contains(m));
    if command.contains(" -A ") && command.contains(" NFQUEUE") && !usage_error {
        return RulesError::NfqueueUnavailable { command, stderr };
    }
    RulesError::Command {
        command,
        status,
        stderr,
    }
}

/// Formats a command line for messages.
struct CommandLine<'a>(&'a str, &'a [&'a str]);

impl fmt::Display for CommandLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        for arg in self.1 {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// An installed [`RuleSet`]: removing it (explicitly, or on drop) restores the previous state.
#[derive(Debug)]
#[must_use = "dropping the guard removes the rules at once"]
pub struct InstalledRules {
    set: RuleSet,
    removed: bool,
}

impl InstalledRules {
    /// The installed set.
    pub fn rule_set(&self) -> &RuleSet {
        &self.set
    }

    /// Removes the rules and reports the first failure (every step is attempted).
    ///
    /// # Errors
    /// The first failing command.
    pub fn remove(mut self) -> Result<(), RulesError> {
        self.removed = true;
        self.set.remove_installed()
    }

    /// Leaves the rules installed and forgets them (for a daemon that hands them over, or a
    /// test simulating a crash); a later [`RuleSet::install`] of the same set replaces them.
    pub fn leak(mut self) {
        self.removed = true;
    }
}

impl Drop for InstalledRules {
    fn drop(&mut self) {
        if !self.removed {
            // Best effort: errors cannot be reported from drop; call `remove` to see them.
            let _ = self.set.remove_installed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_permission_and_nfqueue_failures() {
        let e = classify_failure(
            "iptables -w -t mangle -N X".into(),
            "exit status: 4".into(),
            "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission \
             denied (you must be root)"
                .into(),
        );
        assert!(matches!(e, RulesError::NotPermitted { .. }), "{e}");
        let e = classify_failure(
            "ip -4 rule add pref 100 fwmark 0x2 lookup 100".into(),
            "exit status: 2".into(),
            "RTNETLINK answers: Operation not permitted".into(),
        );
        assert!(matches!(e, RulesError::NotPermitted { .. }), "{e}");
        let e = classify_failure(
            "iptables -w -t mangle -A X -j NFQUEUE --queue-num 1".into(),
            "exit status: 2".into(),
            "iptables v1.8.9 (nf_tables): Couldn't load target `NFQUEUE':No such file or directory"
                .into(),
        );
        assert!(matches!(e, RulesError::NfqueueUnavailable { .. }), "{e}");
        assert!(e
            .to_string()
            .contains("modprobe nfnetlink_queue xt_NFQUEUE"));
        let e = classify_failure(
            "iptables -w -t mangle -X X".into(),
            "exit status: 1".into(),
            "iptables: No chain/target/match by that name.".into(),
        );
        assert!(matches!(e, RulesError::Command { .. }), "{e}");
        let e = classify_failure(
            "iptables -w -t mangle -A X -j NFQUEUE --queue-num x".into(),
            "exit status: 2".into(),
            "iptables v1.8.9 (nf_tables): Bad argument `x'".into(),
        );
        assert!(matches!(e, RulesError::Command { .. }), "{e}");
    }

    #[test]
    fn invalid_chain_names_are_refused_before_running_anything() {
        let tools = Tools {
            iptables: "/nonexistent/iptables".into(),
            ip6tables: "/nonexistent/ip6tables".into(),
            ip: "/nonexistent/ip".into(),
        };
        for suffix in ["THIS_NAME_IS_FAR_TOO_LONG_FOR_XT", "sp ace", "semi;colon"] {
            let mut set = RuleSet::new("T_").with_tools(tools.clone());
            set.chain(Family::V4, Table::Mangle, Hook::Output, suffix);
            assert!(matches!(
                set.install(),
                Err(RulesError::InvalidChainName(_))
            ));
        }
        let mut set = RuleSet::new("T_").with_tools(tools);
        set.chain(Family::V4, Table::Mangle, Hook::Output, "A");
        set.chain(Family::V4, Table::Mangle, Hook::Prerouting, "A");
        assert!(matches!(
            set.install(),
            Err(RulesError::InvalidChainName(_))
        ));
    }
}

//! Human output: the status summary (like `wg show`) and the sessions table.

use std::fmt::Write;

use tcpcrypt_control::{SessionInfo, Status};

/// Length of the session-ID prefix shown in the table unless `--full` is given.
const SHORT_SESSION_ID: usize = 16;

/// The status summary.
pub(crate) fn status(s: &Status) -> String {
    let mut out = String::new();
    let p = &s.policy;
    let c = &s.counters;
    let f = &c.failures;
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "daemon: tcpcryptd {version}\n  pid: {pid}\n  uptime: {uptime}\n  control protocol: \
         {protocol}\n\npolicy:\n  encrypt: {encrypt}\n  exclude ports: {exclude}\n  mandatory \
         ports: {mandatory}\n  mandatory addresses: {mandatory_addrs}\n  teps: {teps}\n  aeads: {aeads}\n  resumption: {resumption}\n\n\
         connections:\n  encrypted: {enc} ({resumed} resumed)\n  plain: {plain}\n  active \
         sessions: {active}\n  fallbacks: {fallbacks}\n  failures: {auth} auth, {trunc} \
         truncated, {resets} reset, {timeouts} handshake timeout\n  transfer: {bin} received, \
         {bout} sent\n",
        version = s.version,
        pid = s.pid,
        uptime = duration(s.uptime_secs),
        protocol = s.protocol,
        encrypt = list(&p.encrypt),
        exclude = list(&p.exclude_ports),
        mandatory = list(&p.mandatory_ports),
        mandatory_addrs = list(&p.mandatory_addrs),
        teps = list(&p.teps),
        aeads = list(&p.aeads),
        resumption = if p.resumption { "on" } else { "off" },
        enc = c.connections_encrypted,
        resumed = c.connections_resumed,
        plain = c.connections_plain,
        active = c.active_sessions,
        fallbacks = fallbacks(c),
        auth = f.auth_failures,
        trunc = f.truncations,
        resets = f.resets,
        timeouts = f.handshake_timeouts,
        bin = bytes(c.bytes_in),
        bout = bytes(c.bytes_out),
    );
    if let Some(load) = &s.load {
        let _ = write!(
            out,
            "\nload:\n  connections: {live} proxied now (max {max})\n  worker threads: {threads}\n",
            live = load.live_connections,
            max = reported(load.max_connections),
            threads = reported(load.worker_threads),
        );
        if let Some(path) = &p.option_path {
            let how = match path.as_str() {
                "bpf" => " (written by a sock_ops program; only SYNs and SYN-ACKs are queued)",
                "nfqueue" => " (every handshake segment is queued to the daemon)",
                _ => "",
            };
            let _ = writeln!(out, "  ENO option path: {path}{how}");
        }
        if let Some(on) = p.syn_filters {
            let how = if on {
                "on (SYNs to cached servers without tcpcrypt, and SYNs without ENO, are not queued)"
            } else {
                "off (every SYN is queued to the daemon)"
            };
            let _ = writeln!(out, "  SYN filters: {how}");
        }
        if load.at_limit() {
            let _ = write!(
                out,
                "\nWARNING: connection limit reached ({live} of max_connections {max}): new \
                 connections are left plain TCP, NOT encrypted, until some of these end\n",
                live = load.live_connections,
                max = load.max_connections,
            );
        }
    }
    if let Some(path) = &p.keylog {
        let _ = write!(
            out,
            "\nWARNING: key log on (debug mode, RFC 8547 §5): session secrets are written to \
             {path}; anyone who reads it can decrypt the traffic\n"
        );
    }
    out
}

/// A number of [`tcpcrypt_control::Load`], where 0 means the daemon did not report it.
fn reported(n: u64) -> String {
    if n == 0 {
        "not reported".to_owned()
    } else {
        n.to_string()
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn fallbacks(c: &tcpcrypt_control::Counters) -> String {
    if c.fallbacks.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = c
        .fallbacks
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.join(", ")
}

/// The sessions table: a header and one aligned row per connection.
pub(crate) fn sessions(rows: &[SessionInfo], full: bool) -> String {
    const HEADER: [&str; 11] = [
        "LOCAL",
        "REMOTE",
        "STATE",
        "ROLE",
        "TEP",
        "AEAD",
        "RESUMED",
        "IN",
        "OUT",
        "AGE",
        "SESSION-ID",
    ];
    /// Columns aligned to the right (numbers).
    const RIGHT: [bool; 11] = [
        false, false, false, false, false, false, false, true, true, true, false,
    ];
    let mut table: Vec<[String; 11]> = vec![HEADER.map(str::to_owned)];
    table.extend(rows.iter().map(|r| row(r, full)));
    let mut widths = [0usize; 11];
    for cells in &table {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &table {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if RIGHT[i] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(r: &SessionInfo, full: bool) -> [String; 11] {
    let dash = || "-".to_owned();
    let tep = r.tep.as_deref().map_or_else(dash, |t| {
        if full {
            t.to_owned()
        } else {
            t.strip_prefix("TCPCRYPT_ECDHE_").unwrap_or(t).to_owned()
        }
    });
    let aead = r.aead.as_deref().map_or_else(dash, |a| {
        if full {
            a.to_owned()
        } else {
            a.strip_prefix("AEAD_").unwrap_or(a).to_owned()
        }
    });
    let sid = r.session_id.map_or_else(dash, |id| {
        let hex = id.to_hex();
        if full {
            hex
        } else {
            format!("{}...", &hex[..SHORT_SESSION_ID])
        }
    });
    let encrypted = r.session_id.is_some();
    [
        r.local.to_string(),
        r.remote.to_string(),
        r.state.as_str().to_owned(),
        r.role.map_or_else(dash, |role| role.to_string()),
        tep,
        aead,
        if !encrypted {
            dash()
        } else if r.resumed {
            "yes".to_owned()
        } else {
            "no".to_owned()
        },
        bytes(r.bytes_in),
        bytes(r.bytes_out),
        duration(r.age_secs),
        sid,
    ]
}

/// A byte count with a binary unit: `512B`, `1.5K`, `20M`, `3.2G`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

/// A duration in its two largest units: `42s`, `3m05s`, `2h07m`, `4d03h`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(20 << 20), "20M");
        assert_eq!(bytes(u64::MAX), "16384P");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(185), "3m05s");
        assert_eq!(duration(2 * 3600 + 7 * 60 + 1), "2h07m");
        assert_eq!(duration(4 * 86_400 + 3 * 3600), "4d03h");
    }

    #[test]
    fn status_warns_while_the_key_log_is_on() {
        let status = |keylog: Option<&str>| Status {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 1,
            uptime_secs: 0,
            policy: tcpcrypt_control::Policy {
                keylog: keylog.map(Into::into),
                ..Default::default()
            },
            counters: tcpcrypt_control::Counters::default(),
            load: None,
        };
        let on = super::status(&status(Some("/root/keys.log")));
        assert!(
            on.contains("WARNING: key log on")
                && on.contains("/root/keys.log")
                && on.contains("anyone who reads it can decrypt"),
            "{on}"
        );
        assert!(!super::status(&status(None)).contains("key log"));
    }

    #[test]
    fn status_shows_the_load_and_says_when_the_limit_is_reached() {
        let status = |load: Option<(u64, u64)>| Status {
            version: "0.1.0".into(),
            protocol: 1,
            pid: 1,
            uptime_secs: 0,
            policy: tcpcrypt_control::Policy::default(),
            counters: tcpcrypt_control::Counters::default(),
            load: load.map(|(live, max)| tcpcrypt_control::Load {
                live_connections: live,
                max_connections: max,
                worker_threads: 2,
            }),
        };
        let below = super::status(&status(Some((7, 8))));
        assert!(
            below.contains("\nload:\n  connections: 7 proxied now (max 8)\n  worker threads: 2\n"),
            "{below}"
        );
        assert!(!below.contains("limit reached"), "{below}");
        let full = super::status(&status(Some((8, 8))));
        let warning: Vec<&str> = full
            .lines()
            .filter(|l| l.contains("limit reached"))
            .collect();
        assert_eq!(
            warning,
            [
                "WARNING: connection limit reached (8 of max_connections 8): new connections are \
              left plain TCP, NOT encrypted, until some of these end"
            ],
            "{full}"
        );
        // A daemon that does not report its load (older, or a partial object): nothing shown,
        // and no limit claimed.
        let old = super::status(&status(None));
        assert!(!old.contains("load:") && !old.contains("limit"), "{old}");
        let partial = super::status(&status(Some((0, 0))));
        assert!(!partial.contains("limit reached"), "{partial}");
        assert!(partial.contains("(max not reported)"), "{partial}");
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(
            sessions(&[], false),
            "LOCAL  REMOTE  STATE  ROLE  TEP  AEAD  RESUMED  IN  OUT  AGE  SESSION-ID\n"
        );
    }
}

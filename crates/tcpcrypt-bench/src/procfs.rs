//! What the client samples around a measurement: CPU time and resident memory of other
//! processes (the daemons, stunnel, wireguard-go) from /proc, and an interface's byte counters
//! from /sys/class/net.

use std::path::Path;

/// Linux reports /proc/PID/stat times in USER_HZ, which the kernel ABI fixes at 100.
const USER_HZ: f64 = 100.0;

/// User plus system CPU seconds `pid` has used so far.
///
/// # Errors
/// The process is gone or its stat line is malformed.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_seconds(&stat).ok_or_else(|| anyhow::anyhow!("malformed /proc/{pid}/stat"))
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line, in seconds. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after the last ')'.
pub fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Resident set size of `pid` in KiB (VmRSS).
///
/// # Errors
/// The process is gone or has no VmRSS line.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss_kib(&status).ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// The VmRSS value (kB) of a /proc/PID/status text.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An interface's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceCounters {
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
}

/// The counters of interface `iface` so far.
///
/// # Errors
/// No such interface in this network namespace.
pub fn iface_counters(iface: &str) -> anyhow::Result<IfaceCounters> {
    let dir = Path::new("/sys/class/net").join(iface).join("statistics");
    let read = |name: &str| -> anyhow::Result<u64> {
        Ok(std::fs::read_to_string(dir.join(name))?.trim().parse()?)
    };
    Ok(IfaceCounters {
        tx_bytes: read("tx_bytes")?,
        rx_bytes: read("rx_bytes")?,
        tx_packets: read("tx_packets")?,
    })
}

/// TCP segments retransmitted so far in this network namespace (`RetransSegs` of
/// /proc/net/snmp).
///
/// # Errors
/// The file is missing or malformed.
pub fn tcp_retrans_segs() -> anyhow::Result<u64> {
    parse_retrans_segs(&std::fs::read_to_string("/proc/net/snmp")?)
        .ok_or_else(|| anyhow::anyhow!("no Tcp RetransSegs in /proc/net/snmp"))
}

/// `RetransSegs` of a /proc/net/snmp text: the "Tcp:" header line names the fields of the
/// "Tcp:" line after it.
pub fn parse_retrans_segs(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let i = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// CPU seconds of several processes, sampled together.
///
/// # Errors
/// One of them is gone.
pub fn cpu_of(pids: &[u32]) -> anyhow::Result<Vec<f64>> {
    pids.iter().map(|&p| cpu_seconds(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces_and_parens() {
        let line = "1234 (tokio (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_cpu_seconds(line), Some(3.25));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn retransmitted_segments() {
        let snmp = "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm RtoMin OutSegs RetransSegs InErrs\n\
                    Tcp: 1 200 2541545 59 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_retrans_segs(snmp), Some(59));
        assert_eq!(parse_retrans_segs("Tcp: RetransSegs\n"), None);
        assert!(tcp_retrans_segs().is_ok());
    }

    #[test]
    fn rss_line() {
        let status = "Name:\ttcpcryptd\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(parse_rss_kib(status), Some(5120));
        assert_eq!(parse_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(iface_counters("no-such-interface-x").is_err());
        // Every namespace has a loopback.
        assert!(iface_counters("lo").is_ok());
    }
}

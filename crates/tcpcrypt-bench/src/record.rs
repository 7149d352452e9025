//! One measurement as the client prints it (one JSON line) and as docs/performance.json keeps it.

use serde::{Deserialize, Serialize};

/// One measurement of one system in one round. Which fields are set depends on `test`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Round number, from 1.
    pub round: u32,
    /// The system measured: "plain", "tcpcrypt-aes128gcm", "tcpcrypt-aes128gcm-resumed",
    /// "stunnel", "stunnel-resumed", "wireguard-go", ...
    pub system: String,
    /// "bulk1", "bulk4", "rate", "latency", "wire_bulk", "wire_msg" or "idle".
    pub test: String,
    /// Wall-clock length of the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Application bytes the server confirmed (bulk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Application throughput (bulk), 10^9 bits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbps: Option<f64>,
    /// Connections completed (rate, latency, idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conns: Option<u64>,
    /// Connections that failed (rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// Completed connections per second (rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conns_per_sec: Option<f64>,
    /// Median connect + request + response + close, or echo round trip (wire_msg), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// The system's processes (`--pids`) measured, e.g. both daemons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// CPU seconds (user + system) those processes used during the measurement, each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proc_cpu_secs: Vec<f64>,
    /// Their CPU seconds together per 10^9 application bytes (bulk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_secs_per_gb: Option<f64>,
    /// Bytes on the interface (both directions) during the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_bytes: Option<u64>,
    /// Of those, the bytes the client sent (the data direction of a bulk run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tx_bytes: Option<u64>,
    /// Application bytes of the measurement (both directions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_bytes: Option<u64>,
    /// wire_bytes / app_bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_per_app: Option<f64>,
    /// wire_tx_bytes / app_bytes: for bulk, the data direction alone (no acknowledgements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tx_per_app: Option<f64>,
    /// Frames the client sent during the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tx_packets: Option<u64>,
    /// TCP segments the client's namespace retransmitted during the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tx_retrans: Option<u64>,
    /// TCP payload the client sent per application byte, retransmissions left out:
    /// (wire_tx_bytes - wire_tx_packets × [`TCP_FRAME_HEADERS`] - wire_tx_retrans ×
    /// [`TCP_MSS`]) / app_bytes. Whatever the segment sizes, what the protocol adds (exact
    /// but for retransmitted segments shorter than a full one); meaningless for a UDP tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_tx_payload_per_app: Option<f64>,
    /// RSS of each process (KiB) before the idle connections were opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rss_before_kib: Vec<u64>,
    /// RSS of each process (KiB) with all of them open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rss_after_kib: Vec<u64>,
    /// (after - before) / conns for each process, KiB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kib_per_conn: Vec<f64>,
    /// Why the measurement failed, if it did (the other fields are then absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Header bytes of one TCP frame on the veth: Ethernet 14, IPv4 20, TCP 20 + 12 of the
/// timestamp option (every segment but the SYNs carries it, Linux's default).
pub const TCP_FRAME_HEADERS: u64 = 14 + 20 + 20 + 12;

/// Payload of a full TCP segment on the veth (MTU 1500 - IPv4 20 - TCP 20 - timestamps 12).
pub const TCP_MSS: u64 = 1448;

/// The value at percentile `p` (0-100) of `sorted` (nearest rank; `None` when empty).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of `values` (mean of the middle two for an even count; `None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile(&sorted, 99.0), Some(99.0));
        assert_eq!(percentile(&sorted, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn record_round_trips_and_refuses_unknown_fields() {
        let r = Record {
            round: 2,
            system: "plain".into(),
            test: "bulk1".into(),
            gbps: Some(12.5),
            ..Record::default()
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
        assert!(serde_json::from_str::<Record>(
            r#"{"round":1,"system":"x","test":"y","gbsp":1.0}"#
        )
        .is_err());
    }
}

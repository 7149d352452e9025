//! wrk's summary as a [`Record`]: bench.sh measures the connection rate with wrk and nginx as
//! well (test "rate_http"), and turns wrk's output into a record here.

use crate::record::Record;

/// Parses wrk's summary ("N requests in 5.00s, ...", "Requests/sec: X", "Socket errors: connect
/// a, read b, write c, timeout d", "Non-2xx or 3xx responses: e") into a record of test
/// "rate_http"; `error` is set when the summary is missing (wrk gave up, e.g. "unable to
/// connect").
pub fn record(output: &str, system: &str, round: u32) -> Record {
    let mut r = Record {
        round,
        system: system.into(),
        test: "rate_http".into(),
        ..Record::default()
    };
    let requests = output.lines().find_map(|l| {
        let (n, rest) = l.trim().split_once(" requests in ")?;
        let dur = rest.split(',').next()?.trim();
        let secs = if let Some(ms) = dur.strip_suffix("ms") {
            ms.parse::<f64>().ok()? / 1000.0
        } else if let Some(m) = dur.strip_suffix('m') {
            m.parse::<f64>().ok()? * 60.0
        } else {
            dur.strip_suffix('s')?.parse::<f64>().ok()?
        };
        Some((n.parse::<u64>().ok()?, secs))
    });
    let rps = output.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Requests/sec:")?
            .trim()
            .parse::<f64>()
            .ok()
    });
    let (Some((n, secs)), Some(rps)) = (requests, rps) else {
        let text: Vec<&str> = output.split_whitespace().collect();
        let mut msg = format!("wrk: {}", text.join(" "));
        msg.truncate(300);
        r.error = Some(msg);
        return r;
    };
    let mut errors = 0;
    for l in output.lines().map(str::trim) {
        if let Some(list) = l.strip_prefix("Socket errors:") {
            errors += list
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(n) = l.strip_prefix("Non-2xx or 3xx responses:") {
            errors += n.trim().parse::<u64>().unwrap_or(0);
        }
    }
    r.conns = Some(n);
    r.seconds = Some(secs);
    r.conns_per_sec = Some(rps);
    r.errors = Some(errors);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 5s test @ http://10.88.0.2:7003/100b
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.87ms    1.10ms  21.30ms   85.37%
    Req/Sec     1.40k   102.47     1.62k    70.00%
  13951 requests in 5.00s, 4.43MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:   2789.47
Transfer/sec:    0.89MB
";

    #[test]
    fn summary_with_errors() {
        let r = record(OUTPUT, "tcpcrypt-aes128gcm", 2);
        assert_eq!(r.test, "rate_http");
        assert_eq!(r.round, 2);
        assert_eq!(r.conns, Some(13951));
        assert_eq!(r.seconds, Some(5.0));
        assert_eq!(r.conns_per_sec, Some(2789.47));
        assert_eq!(r.errors, Some(17));
        assert_eq!(r.error, None);
    }

    #[test]
    fn milliseconds_and_no_errors() {
        let out = "  100 requests in 500.00ms, 1MB read\nRequests/sec: 200.00\n";
        let r = record(out, "plain", 1);
        assert_eq!(
            (r.conns, r.seconds, r.errors),
            (Some(100), Some(0.5), Some(0))
        );
    }

    #[test]
    fn wrk_that_gave_up_is_an_error_record() {
        let r = record(
            "unable to connect to 10.88.0.2:7015 Connection reset by peer\n",
            "x",
            1,
        );
        assert_eq!(
            r.error.as_deref(),
            Some("wrk: unable to connect to 10.88.0.2:7015 Connection reset by peer")
        );
        assert_eq!(r.conns_per_sec, None);
    }
}

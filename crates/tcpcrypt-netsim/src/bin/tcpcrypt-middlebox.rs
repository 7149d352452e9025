//! `tcpcrypt-middlebox`: the netsim middlebox by hand. Bridges two interfaces of the current
//! network namespace (run it under `ip netns exec M` for another one) through the impairment engine until killed or until
//! `--duration` passes, printing the counters every few seconds. Needs root.
//!
//! ```text
//! ip netns exec M tcpcrypt-middlebox --a m-a --b m-b --both loss=0.01,resegment \
//!     --b2a strip-eno=syn-ack --cut after=1000000,for=3s --seed 7 --duration 60
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tcpcrypt_netsim::config::{parse_cut, Config, Impairment};
use tcpcrypt_netsim::middlebox::Middlebox;

const USAGE: &str = "\
usage: tcpcrypt-middlebox --a IFACE --b IFACE [--both SPEC] [--a2b SPEC]
                          [--b2a SPEC] [--cut after=BYTES,for=DUR] [--seed N] [--mtu N]
                          [--duration SECS]

Bridges IFACE a (host A's side) and IFACE b (host B's side) through the impairment engine.
Run it in another namespace with `ip netns exec NAME tcpcrypt-middlebox ...`.
SPEC is a comma-separated list (--both applies to both directions, then --a2b/--b2a add):
  loss=P reorder=P reorder-gap=DUR dup=P delay=DUR jitter=DUR resegment
  strip-eno=syn|syn-ack|non-syn echo-syn-options flip-after=N rst-after=N fin-after=N
P is a fraction (0.01 = 1%), DUR like 5ms or 2s, N a byte count.";

fn merge(base: &str, extra: &str) -> String {
    [base, extra]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpcrypt-middlebox: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let (mut ia, mut ib) = (None, None);
    let (mut both, mut a2b, mut b2a) = (String::new(), String::new(), String::new());
    let mut config = Config::default();
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        match arg.as_str() {
            "--a" => ia = Some(value),
            "--b" => ib = Some(value),
            "--both" => both = value,
            "--a2b" => a2b = value,
            "--b2a" => b2a = value,
            "--cut" => config.cut = Some(parse_cut(&value).map_err(|e| e.to_string())?),
            "--seed" => config.seed = value.parse().map_err(|_| "--seed takes a number")?,
            "--mtu" => config.mtu = value.parse().map_err(|_| "--mtu takes a number")?,
            "--duration" => {
                duration = Some(Duration::from_secs(
                    value.parse().map_err(|_| "--duration takes seconds")?,
                ));
            }
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    let (Some(ia), Some(ib)) = (ia, ib) else {
        return Err(format!("--a and --b are required\n{USAGE}"));
    };
    config.a_to_b = Impairment::parse(&merge(&both, &a2b)).map_err(|e| e.to_string())?;
    config.b_to_a = Impairment::parse(&merge(&both, &b2a)).map_err(|e| e.to_string())?;
    eprintln!(
        "tcpcrypt-middlebox: {ia} -> {ib}: {}; {ib} -> {ia}: {}; cut: {:?}",
        config.a_to_b, config.b_to_a, config.cut
    );
    let mb = Middlebox::start(None, &ia, &ib, config).map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if !mb.is_running() {
            return mb.stop().map_err(|e| e.to_string());
        }
        let elapsed = start.elapsed();
        if elapsed.as_secs() % 5 == 0 || duration.is_some_and(|d| elapsed >= d) {
            eprintln!("tcpcrypt-middlebox: {:?}", mb.stats());
        }
        if duration.is_some_and(|d| elapsed >= d) {
            return mb.stop().map_err(|e| e.to_string());
        }
    }
}

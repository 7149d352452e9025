//! `tcpcrypt-load`: the load tool and report renderer of `scripts/bench.sh`.
//!
//! ```text
//! tcpcrypt-load serve --listen 0.0.0.0:5300
//! tcpcrypt-load relay --listen 0.0.0.0:5310 --to 127.0.0.1:5300 [--listen ... --to ...]
//! tcpcrypt-load bulk --target 10.88.0.2:5300 --streams 4 --seconds 5 --system plain --round 1
//! tcpcrypt-load rate --target ... --concurrency 8 --seconds 5
//! tcpcrypt-load latency --target ... --count 500
//! tcpcrypt-load echo --target ... --count 2000 --iface veth0
//! tcpcrypt-load idle --target ... --count 10000 --pids 123,456
//! tcpcrypt-load report --records raw.jsonl --meta meta.tsv --configs DIR --out docs/performance
//! ```
//!
//! Every client mode prints one JSON line (a `Record`); a failed measurement prints a record
//! with `error` set and exits 1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tcpcrypt_bench::client::{self, Amount};
use tcpcrypt_bench::procfs;
use tcpcrypt_bench::protocol::MESSAGE_LEN;
use tcpcrypt_bench::record::{percentile, Record, TCP_FRAME_HEADERS, TCP_MSS};
use tcpcrypt_bench::report::Results;

#[derive(Parser)]
#[command(
    name = "tcpcrypt-load",
    about = "Load tool and report renderer of scripts/bench.sh"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every mode until killed, on the --listen port and the next --ports - 1.
    Serve {
        #[arg(long)]
        listen: SocketAddr,
        /// How many consecutive ports (bench.sh gives every measurement its own, so that no
        /// TIME_WAIT of an earlier one collides with it).
        #[arg(long, default_value_t = 1)]
        ports: u16,
    },
    /// Relay every connection accepted on each --listen to the --to of the same position,
    /// bytes unchanged, until killed (the "relay floor": see `tcpcrypt_bench::relay`).
    Relay {
        #[arg(long, required = true)]
        listen: Vec<SocketAddr>,
        #[arg(long, required = true)]
        to: Vec<SocketAddr>,
    },
    /// Stream data on N connections.
    Bulk {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1)]
        streams: usize,
        #[arg(long, conflicts_with = "bytes")]
        seconds: Option<f64>,
        /// Total bytes instead of a duration.
        #[arg(long)]
        bytes: Option<u64>,
    },
    /// Connection rate: connect, 100-byte request, 100-byte response, close, from C threads.
    Rate {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Sequential connect + request + response + close: p50 and p99.
    Latency {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 500)]
        count: usize,
        #[arg(long, default_value_t = 10)]
        warmup: usize,
    },
    /// 100-byte messages echoed one at a time on one connection.
    Echo {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 2000)]
        count: usize,
    },
    /// Open N idle connections and measure the --pids' memory before and with them open.
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        /// Wait this long with all open before sampling memory.
        #[arg(long, default_value_t = 2.0)]
        settle_secs: f64,
    },
    /// Turn wrk's output (stdin) into a record (test "rate_http"); exits 1 when wrk gave up.
    WrkRecord {
        #[arg(long)]
        system: String,
        #[arg(long, default_value_t = 1)]
        round: u32,
    },
    /// Render docs/performance.{json,md,svg}.
    Report {
        /// Records, one JSON line each (from the client modes).
        #[arg(long, required_unless_present = "results")]
        records: Option<PathBuf>,
        /// Lines of key, a tab, value: machine, versions, settings.
        #[arg(long)]
        meta: Option<PathBuf>,
        /// A directory of configuration files, shown verbatim (name = file name).
        #[arg(long)]
        configs: Option<PathBuf>,
        /// Re-render from an existing performance.json instead.
        #[arg(long, conflicts_with_all = ["records", "meta", "configs"])]
        results: Option<PathBuf>,
        /// Output path without extension: writes OUT.json, OUT.md, OUT.svg.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Clone)]
struct Common {
    #[arg(long)]
    target: SocketAddr,
    /// The system's name in the record.
    #[arg(long, default_value = "unnamed")]
    system: String,
    #[arg(long, default_value_t = 1)]
    round: u32,
    /// The test's name in the record (defaults per mode).
    #[arg(long)]
    test: Option<String>,
    /// Processes whose CPU time (and memory, for idle) to sample, comma separated.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Interface whose tx+rx byte counters to sample.
    #[arg(long)]
    iface: Option<String>,
}

impl Common {
    fn record(&self, default_test: &str) -> Record {
        Record {
            round: self.round,
            system: self.system.clone(),
            test: self.test.clone().unwrap_or_else(|| default_test.into()),
            pids: self.pids.clone(),
            ..Record::default()
        }
    }
}

/// CPU and interface counters around a measurement.
struct Sample {
    cpu: Vec<f64>,
    wire: Option<(procfs::IfaceCounters, u64)>,
}

impl Sample {
    fn take(c: &Common) -> anyhow::Result<Self> {
        Ok(Self {
            cpu: procfs::cpu_of(&c.pids)?,
            wire: c
                .iface
                .as_deref()
                .map(|i| anyhow::Ok((procfs::iface_counters(i)?, procfs::tcp_retrans_segs()?)))
                .transpose()?,
        })
    }

    /// Fills the CPU and wire fields of `r` with the change since `self`.
    fn finish(self, c: &Common, r: &mut Record, app_bytes: u64) -> anyhow::Result<()> {
        let now = Self::take(c)?;
        r.proc_cpu_secs = now.cpu.iter().zip(&self.cpu).map(|(b, a)| b - a).collect();
        if let (Some((a, retrans_a)), Some((b, retrans_b))) = (self.wire, now.wire) {
            let tx = b.tx_bytes - a.tx_bytes;
            let total = tx + b.rx_bytes - a.rx_bytes;
            let packets = b.tx_packets - a.tx_packets;
            let app = app_bytes.max(1) as f64;
            r.wire_bytes = Some(total);
            r.wire_tx_bytes = Some(tx);
            r.wire_tx_packets = Some(packets);
            r.app_bytes = Some(app_bytes);
            r.wire_per_app = Some(total as f64 / app);
            r.wire_tx_per_app = Some(tx as f64 / app);
            let retrans = retrans_b - retrans_a;
            r.wire_tx_retrans = Some(retrans);
            r.wire_tx_payload_per_app = Some(
                tx.saturating_sub(packets * TCP_FRAME_HEADERS + retrans * TCP_MSS) as f64 / app,
            );
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(r: &mut Record, times: &[Duration]) {
    let mut v: Vec<f64> = times.iter().map(|&d| ms(d)).collect();
    v.sort_by(f64::total_cmp);
    r.p50_ms = percentile(&v, 50.0);
    r.p99_ms = percentile(&v, 99.0);
}

fn run_client(cmd: Cmd) -> (Record, anyhow::Result<()>) {
    match cmd {
        Cmd::Bulk {
            common,
            streams,
            seconds,
            bytes,
        } => {
            let mut r = common.record(&format!("bulk{streams}"));
            let res = (|| {
                let amount = match bytes {
                    Some(b) => Amount::Bytes(b),
                    None => Amount::Seconds(seconds.unwrap_or(5.0)),
                };
                // A failed run (a connection reset) is counted and run again, up to 3 times.
                let mut before = Sample::take(&common)?;
                let (b, failed) = client::retry(3, || {
                    before = Sample::take(&common)?;
                    client::bulk(common.target, streams, amount)
                })?;
                before.finish(&common, &mut r, b.bytes)?;
                r.errors = Some(failed);
                let secs = b.elapsed.as_secs_f64();
                r.seconds = Some(secs);
                r.bytes = Some(b.bytes);
                r.gbps = Some(b.bytes as f64 * 8.0 / secs / 1e9);
                if !r.proc_cpu_secs.is_empty() {
                    let cpu: f64 = r.proc_cpu_secs.iter().sum();
                    r.cpu_secs_per_gb = Some(cpu / (b.bytes as f64 / 1e9));
                }
                Ok(())
            })();
            (r, res)
        }
        Cmd::Rate {
            common,
            concurrency,
            seconds,
        } => {
            let mut r = common.record("rate");
            let res = (|| {
                let before = Sample::take(&common)?;
                let x = client::rate(common.target, concurrency, seconds);
                before.finish(&common, &mut r, x.conns * 2 * MESSAGE_LEN as u64)?;
                let secs = x.elapsed.as_secs_f64();
                r.seconds = Some(secs);
                r.conns = Some(x.conns);
                r.errors = Some(x.errors);
                r.conns_per_sec = Some(x.conns as f64 / secs);
                anyhow::ensure!(x.conns > 0, "no connection completed ({} failed)", x.errors);
                Ok(())
            })();
            (r, res)
        }
        Cmd::Latency {
            common,
            count,
            warmup,
        } => {
            let mut r = common.record("latency");
            let res = (|| {
                let before = Sample::take(&common)?;
                let (times, errors) = client::latency(common.target, count, warmup)?;
                before.finish(
                    &common,
                    &mut r,
                    (count + warmup) as u64 * 2 * MESSAGE_LEN as u64,
                )?;
                r.conns = Some(times.len() as u64);
                r.errors = Some(errors);
                r.seconds = Some(times.iter().map(|d| d.as_secs_f64()).sum());
                percentiles(&mut r, &times);
                Ok(())
            })();
            (r, res)
        }
        Cmd::Echo { common, count } => {
            let mut r = common.record("wire_msg");
            let res = (|| {
                let mut before = Sample::take(&common)?;
                let (times, failed) = client::retry(3, || {
                    before = Sample::take(&common)?;
                    client::echo(common.target, count)
                })?;
                before.finish(&common, &mut r, count as u64 * 2 * MESSAGE_LEN as u64)?;
                r.errors = Some(failed);
                r.conns = Some(1);
                r.seconds = Some(times.iter().map(|d| d.as_secs_f64()).sum());
                percentiles(&mut r, &times);
                Ok(())
            })();
            (r, res)
        }
        Cmd::Idle {
            common,
            count,
            settle_secs,
        } => {
            let mut r = common.record("idle");
            let res = (|| {
                let before: Vec<u64> = common
                    .pids
                    .iter()
                    .map(|&p| procfs::rss_kib(p))
                    .collect::<anyhow::Result<_>>()?;
                let (open, failed) = client::idle(common.target, count)?;
                r.errors = Some(failed);
                std::thread::sleep(Duration::from_secs_f64(settle_secs));
                let after: Vec<u64> = common
                    .pids
                    .iter()
                    .map(|&p| procfs::rss_kib(p))
                    .collect::<anyhow::Result<_>>()?;
                r.conns = Some(open.len() as u64);
                r.kib_per_conn = before
                    .iter()
                    .zip(&after)
                    .map(|(&b, &a)| (a as f64 - b as f64) / open.len().max(1) as f64)
                    .collect();
                r.rss_before_kib = before;
                r.rss_after_kib = after;
                drop(open);
                Ok(())
            })();
            (r, res)
        }
        Cmd::Serve { .. } | Cmd::Relay { .. } | Cmd::Report { .. } | Cmd::WrkRecord { .. } => {
            unreachable!("not a client mode")
        }
    }
}

fn report(
    records: Option<PathBuf>,
    meta: Option<PathBuf>,
    configs: Option<PathBuf>,
    results: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<()> {
    let results = if let Some(path) = results {
        serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parse {}", path.display()))?
    } else {
        let mut res = Results::default();
        let path = records.context("--records or --results")?;
        for (i, line) in std::fs::read_to_string(&path)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            res.records.push(
                serde_json::from_str(line)
                    .with_context(|| format!("{}:{}: not a record", path.display(), i + 1))?,
            );
        }
        if let Some(meta) = meta {
            for line in std::fs::read_to_string(meta)?.lines() {
                if let Some((k, v)) = line.split_once('\t') {
                    res.meta.push((k.trim().into(), v.trim().into()));
                }
            }
        }
        if let Some(dir) = configs {
            let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for e in entries {
                let text = std::fs::read_to_string(e.path())?;
                res.configs
                    .push((e.file_name().to_string_lossy().into_owned(), text));
            }
        }
        res
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let with = |ext: &str| out.with_extension(ext);
    std::fs::write(with("json"), serde_json::to_string_pretty(&results)? + "\n")?;
    std::fs::write(with("md"), results.markdown())?;
    std::fs::write(with("svg"), results.svg())?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve { listen, ports } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            if let Err(e) = rt.block_on(tcpcrypt_bench::server::serve(listen, ports)) {
                eprintln!("tcpcrypt-load serve: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Cmd::Relay { listen, to } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            if listen.len() != to.len() {
                eprintln!(
                    "tcpcrypt-load relay: {} --listen but {} --to: give one --to for each --listen",
                    listen.len(),
                    to.len()
                );
                return std::process::ExitCode::from(2);
            }
            let pairs = listen.into_iter().zip(to).collect();
            if let Err(e) = rt.block_on(tcpcrypt_bench::relay::relay(pairs)) {
                eprintln!("tcpcrypt-load relay: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Cmd::WrkRecord { system, round } => {
            let mut out = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut out) {
                eprintln!("tcpcrypt-load wrk-record: {e}");
                return std::process::ExitCode::FAILURE;
            }
            let r = tcpcrypt_bench::wrk::record(&out, &system, round);
            println!(
                "{}",
                serde_json::to_string(&r).expect("a record serializes")
            );
            if r.error.is_some() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Cmd::Report {
            records,
            meta,
            configs,
            results,
            out,
        } => match report(records, meta, configs, results, out) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tcpcrypt-load report: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        cmd => {
            let (mut record, res) = run_client(cmd);
            let code = match res {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tcpcrypt-load: {} {}: {e:#}", record.system, record.test);
                    record.error = Some(format!("{e:#}"));
                    std::process::ExitCode::FAILURE
                }
            };
            println!(
                "{}",
                serde_json::to_string(&record).expect("a record serializes")
            );
            code
        }
    }
}

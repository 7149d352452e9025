//! `tcpcryptd` entry point: parse flags, load the configuration, run the daemon in the
//! foreground (logs to stderr; `RUST_LOG` sets the level, default `info`).

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    if let Err(e) = run() {
        // One line that says what failed and what to do: no backtrace, no repeated causes.
        eprintln!("tcpcryptd: error: {}", message(&e));
        std::process::exit(1);
    }
}

/// The error and those of its causes its text does not already include.
fn message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg
}

fn run() -> anyhow::Result<()> {
    let cli = tcpcryptd::config::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = cli.load().context("configuration")?;
    if cli.print_rules {
        if config.option_path == tcpcryptd::config::OptionPath::Auto {
            println!(
                "# --option-path auto: these are the nfqueue path's rules; where the BPF program \
                 loads, the daemon installs those of --option-path bpf instead"
            );
        }
        // On the BPF path the SYN filters are pinned while the rules are added: placeholders.
        let filters = (config.option_path == tcpcryptd::config::OptionPath::Bpf)
            .then(tcpcryptd::rules::SynFilterPaths::placeholders);
        let plan = tcpcryptd::rules::Plan::with_syn_filters(&config, filters.as_ref());
        print!("{}", plan.render(&config.chain_prefix));
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    // Every daemon error's text includes its cause (and the fix): report that text alone.
    runtime
        .block_on(tcpcryptd::daemon::run(config))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

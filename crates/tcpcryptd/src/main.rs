//! `tcpcryptd` entry point: parse flags, load the configuration, run the daemon in the
//! foreground (logs to stderr; `RUST_LOG` sets the level, default `info`).

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = tcpcryptd::config::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = cli.load().context("configuration")?;
    if cli.print_rules {
        let plan = tcpcryptd::rules::Plan::new(&config);
        print!("{}", plan.render(&config.chain_prefix));
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(tcpcryptd::daemon::run(config))?;
    Ok(())
}

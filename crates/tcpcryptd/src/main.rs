//! `tcpcryptd` entry point: parse flags, load the configuration, run the daemon.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = tcpcryptd::config::Cli::parse();
    let config = cli.load()?;
    println!("{config:#?}");
    Ok(())
}

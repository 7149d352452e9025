//! `tcpcrypt`: shows what `tcpcryptd` is doing, over its control socket.
//!
//! ```text
//! tcpcrypt [--control PATH] status [--json]
//! tcpcrypt [--control PATH] sessions [--json] [--full]
//! tcpcrypt [--control PATH] session-id --local ADDR --remote ADDR [--json]
//! tcpcrypt inspect CAPTURE [--keylog FILE] [--dump DIR] [--write-plain OUT.pcap] [--json] [--strict]
//! ```
//!
//! Exit codes: 0 success, 1 the daemon answered with an error (or answered badly), or
//! `inspect` could not read its input or write its output, 2 usage, 3 the daemon could not be
//! reached, 4 `inspect --strict` found an anomaly. Errors are one line on stderr.

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::value::RawValue;
use tcpcrypt_control::{Client, ControlError, Request, Response};

mod format;
mod inspect;

/// Exit code when the daemon answered with an error reply or a malformed one.
const EXIT_DAEMON_ERROR: u8 = 1;
/// Exit code for a command-line usage error (what clap uses too).
const EXIT_USAGE: u8 = 2;
/// Exit code when the daemon's control socket cannot be reached.
const EXIT_UNREACHABLE: u8 = 3;
/// Exit code of `inspect --strict` when a connection has an anomaly or a wrong key.
const EXIT_ANOMALY: u8 = 4;

/// Shows the state of tcpcryptd, the tcpcrypt (RFC 8548) daemon.
#[derive(Debug, Parser)]
#[command(name = "tcpcrypt", version)]
struct Cli {
    /// The daemon's control socket [default: $TCPCRYPT_CONTROL, else /run/tcpcryptd.sock].
    #[arg(long, value_name = "PATH", global = true)]
    control: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Version, policy, counters and load (connections proxied, limit, threads) of the daemon.
    Status {
        /// Print the daemon's JSON reply object as received.
        #[arg(long)]
        json: bool,
    },
    /// One row per connection the daemon handles.
    Sessions {
        /// Print the JSON array as received from the daemon (stable keys).
        #[arg(long)]
        json: bool,
        /// Do not abbreviate session IDs, TEP and AEAD names in the table.
        #[arg(long)]
        full: bool,
    },
    /// The session ID of one connection, as its application sees it (for scripts).
    SessionId {
        #[arg(
            long,
            value_name = "ADDR",
            help = "The application's local address (getsockname), e.g. 192.0.2.1:40000 or [::1]:40000"
        )]
        local: SocketAddr,
        /// The application's peer address (getpeername).
        #[arg(long, value_name = "ADDR")]
        remote: SocketAddr,
        /// Print the daemon's JSON reply (session ID and role) instead of the bare hex.
        #[arg(long)]
        json: bool,
    },
    /// Analyse a pcap or pcapng capture of TCP-ENO/tcpcrypt connections (needs no daemon).
    #[command(long_about = inspect::LONG_ABOUT)]
    Inspect(inspect::Args),
}

/// Why the command failed, and so its exit code.
#[derive(Debug)]
enum Failure {
    Unreachable(ControlError),
    Control(ControlError),
    DaemonError {
        code: String,
        message: String,
    },
    Unexpected(&'static str),
    Stdout(io::Error),
    /// `inspect` could not read its input or write its output.
    Inspect(String),
    /// `inspect --strict` found anomalies (the report was printed).
    Anomalies,
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable(_) => EXIT_UNREACHABLE,
            Self::Control(_) | Self::DaemonError { .. } | Self::Unexpected(_) => EXIT_DAEMON_ERROR,
            // A closed pipe (`tcpcrypt sessions | head`) is no usage error, but is no success.
            Self::Stdout(_) => EXIT_DAEMON_ERROR,
            Self::Inspect(_) => EXIT_DAEMON_ERROR,
            Self::Anomalies => EXIT_ANOMALY,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unreachable(e) | Self::Control(e) => e.to_string(),
            Self::DaemonError { code, message } => format!("tcpcryptd: {message} ({code})"),
            Self::Unexpected(what) => format!("unexpected reply from tcpcryptd: expected {what}"),
            Self::Stdout(e) => format!("cannot write output: {e}"),
            Self::Inspect(message) => message.clone(),
            Self::Anomalies => "inspect: anomalies found (--strict)".to_owned(),
        }
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        if e.is_unreachable() {
            Self::Unreachable(e)
        } else {
            Self::Control(e)
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tcpcrypt: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Inspect(args) = &cli.command {
        return inspect::run(args);
    }
    let path = cli.control.unwrap_or_else(tcpcrypt_control::default_path);
    let mut client = Client::connect(&path)?;
    let out = match cli.command {
        Command::Status { json } => {
            let (line, resp) = ask(&mut client, &Request::Status)?;
            match resp {
                Response::Status(_) if json => inner_json(&line, "status")?,
                Response::Status(status) => format::status(&status),
                _ => return Err(Failure::Unexpected("a status reply")),
            }
        }
        Command::Sessions { json, full } => {
            let (line, resp) = ask(&mut client, &Request::Sessions)?;
            match resp {
                Response::Sessions(_) if json => inner_json(&line, "sessions")?,
                Response::Sessions(rows) => format::sessions(&rows, full),
                _ => return Err(Failure::Unexpected("a sessions reply")),
            }
        }
        Command::SessionId {
            local,
            remote,
            json,
        } => {
            let (line, resp) = ask(&mut client, &Request::SessionId { local, remote })?;
            match resp {
                Response::SessionId(_) if json => inner_json(&line, "session_id")?,
                Response::SessionId(reply) => format!("{}\n", reply.session_id.to_hex()),
                _ => return Err(Failure::Unexpected("a session_id reply")),
            }
        }
        Command::Inspect(_) => return Err(Failure::Unexpected("no daemon call for inspect")),
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Failure::Stdout)
}

/// Sends a request; returns the raw reply line and its decoded form, or the daemon's error.
fn ask(client: &mut Client, req: &Request) -> Result<(String, Response), Failure> {
    let line = client.request_raw(req)?;
    let resp = tcpcrypt_control::message::decode_line(line.as_bytes())
        .map_err(|e| ControlError::MalformedReply(e.to_string()))?;
    if let Response::Error { code, message } = resp {
        return Err(Failure::DaemonError {
            code: code.to_string(),
            message,
        });
    }
    Ok((line, resp))
}

/// The value under `key` of the reply line, byte for byte as the daemon sent it, plus `\n`.
fn inner_json(line: &str, key: &'static str) -> Result<String, Failure> {
    let map: std::collections::HashMap<&str, &RawValue> = serde_json::from_str(line)
        .map_err(|e| Failure::Control(ControlError::MalformedReply(e.to_string())))?;
    map.get(key)
        .map(|raw| format!("{}\n", raw.get()))
        .ok_or(Failure::Unexpected(key))
}

//! `tcpcrypt inspect`: the capture inspector of `tcpcrypt-inspect` on the command line.

use std::io::Write;
use std::path::PathBuf;

use tcpcrypt_inspect::{dump, plain_pcap};
use tcpcrypt_proto::keylog::KeyLogFile;

use crate::Failure;

/// The long help of `tcpcrypt inspect`.
pub(crate) const LONG_ABOUT: &str = "\
Analyse a pcap or pcapng capture (Ethernet, Linux cooked SLL/SLL2 or raw IP; IPv4 and IPv6) of
TCP-ENO (RFC 8547) and tcpcrypt (RFC 8548) connections. Each TCP connection is reassembled and
reported: the ENO options each side sent (TEPs, b and a bits, resumption suboptions), the
outcome (plain, fallback and why, tcpcrypt fresh or resumed, legacy kind-253 option seen),
roles, TEP, AEAD, frames and rekeys per direction, how it ended, and every anomaly.

With --keylog (TCPCRYPT_ES / TCPCRYPT_SS lines, as tcpcryptd --keylog writes them) the frames
are decrypted; a key counts as known only when it reproduces the session ID from the capture.

--dump DIR writes each connection's recovered application bytes, one file per direction:
DIR/conn<N>.client_to_server.bin and DIR/conn<N>.server_to_client.bin, where N is the
connection's number in the report (#N; JSON array index + 1), at least three digits (conn001).
Plain and fallback connections give their TCP payload; tcpcrypt connections with known keys
give the authenticated plaintext up to the first frame that fails to verify.

--write-plain OUT.pcap writes a pcap (Ethernet) with one synthetic plain TCP connection per
decrypted connection, carrying the plaintext, for tcpdump or Wireshark; a direction ends with
a FIN only if its FINp frame authenticated.

How a connection ended (JSON \"end\"): finp (both directions ended with an authenticated FINp
frame), fin (TCP FIN both ways, FINp unchecked: plain TCP or no keys), reset, truncated (bytes
missing: a gap, a frame cut off, a damaged capture), open.

Exit status: 0 when the capture was read (anomalies are reported, not fatal); 4 with --strict
when any connection has an anomaly (a tag that does not verify, a FIN without FINp, a missing
ENO, a gap, ...) or a key that does not match; 1 when the capture, key log or an output cannot
be read or written; 2 for usage errors.";

/// Arguments of `tcpcrypt inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The capture file (pcap or pcapng).
    #[arg(value_name = "CAPTURE")]
    capture: PathBuf,
    /// A key log (TCPCRYPT_ES/TCPCRYPT_SS lines) to decrypt with.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// Write each direction's recovered bytes into DIR (see the naming above).
    #[arg(long, value_name = "DIR")]
    dump: Option<PathBuf>,
    /// Write a plaintext pcap of the decrypted connections.
    #[arg(long, value_name = "OUT.pcap")]
    write_plain: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Exit 4 if any connection has an anomaly or a wrong key.
    #[arg(long)]
    strict: bool,
}

/// Runs the subcommand.
pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p)
            .map_err(|e| Failure::Inspect(format!("cannot read {what} {}: {e}", p.display())))
    };
    let bytes = read(&args.capture, "capture")?;
    let keylog = match &args.keylog {
        None => None,
        Some(p) => {
            let text = String::from_utf8(read(p, "key log")?).map_err(|_| {
                Failure::Inspect(format!("key log {} is not UTF-8 text", p.display()))
            })?;
            Some(
                KeyLogFile::parse(&text)
                    .map_err(|e| Failure::Inspect(format!("{}: {e}", p.display())))?,
            )
        }
    };
    let inspection = tcpcrypt_inspect::inspect(&bytes, keylog.as_ref())
        .map_err(|e| Failure::Inspect(format!("{}: {e}", args.capture.display())))?;
    if let Some(dir) = &args.dump {
        dump::write(&inspection, dir).map_err(|e| {
            Failure::Inspect(format!("cannot write dump into {}: {e}", dir.display()))
        })?;
    }
    if let Some(out) = &args.write_plain {
        // An empty capture (header only) when nothing was decrypted, so scripts always get a file.
        let pcap = plain_pcap::write(&inspection).unwrap_or_else(plain_pcap::empty);
        std::fs::write(out, pcap)
            .map_err(|e| Failure::Inspect(format!("cannot write {}: {e}", out.display())))?;
    }
    let text = if args.json {
        let mut j = inspection.report.to_json();
        j.push('\n');
        j
    } else {
        inspection.report.to_text()
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Failure::Stdout)?;
    if args.strict && inspection.report.has_anomalies() {
        return Err(Failure::Anomalies);
    }
    Ok(())
}

//! `robustness-report`: renders the JSON lines recorded by the robustness tests
//! (`TCPCRYPT_ROBUSTNESS_OUT`) into `docs/robustness.md`. Run by `scripts/robustness.sh`.
//!
//! ```text
//! robustness-report --input ROWS.jsonl --output docs/robustness.md \
//!     --mode "long (...)" --machine "..." --date "..." --command "..." --commit "..."
//! ```
//!
//! Exits 1 if any scenario did not hold (the document is still written, with the row marked).

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use tcpcrypt_netsim::report::{read_rows, render, Meta};

const USAGE: &str = "usage: robustness-report --input ROWS.jsonl --output FILE.md \
[--mode TEXT] [--machine TEXT] [--date TEXT] [--command TEXT] [--commit TEXT]";

fn main() -> ExitCode {
    let mut input: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut meta = Meta::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let Some(value) = args.next() else {
            eprintln!("robustness-report: error: {arg} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match arg.as_str() {
            "--input" => input = Some(value.into()),
            "--output" => output = Some(value.into()),
            "--mode" => meta.mode = value,
            "--machine" => meta.machine = value,
            "--date" => meta.date = value,
            "--command" => meta.command = value,
            "--commit" => meta.commit = value,
            _ => {
                eprintln!("robustness-report: error: unknown argument {arg}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        eprintln!("robustness-report: error: --input and --output are required\n{USAGE}");
        return ExitCode::from(2);
    };
    let rows = match std::fs::File::open(&input)
        .map_err(Into::into)
        .and_then(|f| read_rows(BufReader::new(f)))
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("robustness-report: error: {}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let doc = render(&rows, &meta);
    if let Err(e) = std::fs::write(&output, doc) {
        eprintln!(
            "robustness-report: error: writing {}: {e}",
            output.display()
        );
        return ExitCode::FAILURE;
    }
    let merged = tcpcrypt_netsim::report::merge(&rows);
    let failing: Vec<_> = merged.iter().filter(|r| !r.holds()).collect();
    println!(
        "robustness-report: {} scenarios ({} rows) -> {}",
        merged.len(),
        rows.len(),
        output.display()
    );
    if failing.is_empty() {
        ExitCode::SUCCESS
    } else {
        for r in failing {
            eprintln!(
                "robustness-report: did not hold: [{}] {}: {}/{} as expected, plaintext {}",
                r.section,
                r.scenario,
                r.as_expected,
                r.trials,
                r.plaintext_check_text()
            );
        }
        ExitCode::FAILURE
    }
}

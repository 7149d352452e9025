//! The robustness report: what every robustness test records, and how `docs/robustness.md` is
//! made from it.
//!
//! A test runs its trials, checks every one of them (a test that runs without
//! [`OUT_ENV`] set asserts exactly the same things), and then records one [`Row`] per scenario
//! with [`Row::record`]. That appends the row as one JSON line to the file named by
//! [`OUT_ENV`], if the variable is set, and does nothing otherwise. `scripts/robustness.sh`
//! sets the variable, runs the matrix, and renders the collected lines with [`render`] (through
//! the `robustness-report` binary).
//!
//! One line looks like this:
//!
//! ```text
//! {"section":"impairment","scenario":"loss 1% both ways","expected":"transfer completes, SHA-256 matches, encrypted",
//!  "trials":3,"as_expected":3,"bytes":6291456,"plaintext_check":"clean","notes":""}
//! ```
//!
//! `plaintext_check` is `"clean"` (the capture of every trial was scanned for the canary and it
//! was not there), `"not applicable (plain by design)"` (no tcpcrypt connection is expected to
//! carry the data: the line keeps this one name whatever the expected outcome) or `"LEAK"`. The
//! report writes a not-applicable check with the reason the row's own `expected` text gives
//! ([`ByDesign`]): plain, reset or refused by design. Rows with the same section and scenario are merged when rendered (trials, counts
//! and bytes added, the worst plaintext check kept), so a test may record one row per trial.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The environment variable naming the JSON-lines file that [`Row::record`] appends to.
pub const OUT_ENV: &str = "TCPCRYPT_ROBUSTNESS_OUT";

/// The section a row belongs to when none is given.
pub const DEFAULT_SECTION: &str = "impairment";

/// What the scan of a scenario's packet captures for the plaintext canary found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PlaintextCheck {
    /// Every capture was scanned and the canary appears in none.
    #[serde(rename = "clean")]
    Clean,
    /// The expected outcome is a plain TCP connection, so the canary is on the wire by design.
    #[serde(rename = "not applicable (plain by design)")]
    NotApplicable,
    /// The canary was found on the wire of a connection that negotiated tcpcrypt.
    #[serde(rename = "LEAK")]
    Leak,
}

impl PlaintextCheck {
    /// The text written in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::NotApplicable => "not applicable (plain by design)",
            Self::Leak => "LEAK",
        }
    }
}

/// What a row expects instead of a tcpcrypt connection, which is why its plaintext check does
/// not apply; read from the row's `expected` text by [`ByDesign::of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByDesign {
    /// A plain TCP connection (fallback, fail-open): the canary is on the wire by design.
    Plain,
    /// The connection is reset (e.g. by the daemon on malformed input).
    Reset,
    /// The connection is refused (e.g. a mandatory port with no daemon).
    Refused,
    /// The expected text names none of these.
    Unstated,
}

impl ByDesign {
    /// The outcome `expected` names first: "reset" → [`Self::Reset`], "refus…" →
    /// [`Self::Refused`], "plain", "fallback", "fall back" or "fail-open" → [`Self::Plain`]
    /// (case-insensitive). The first one counts, so "refused (ECONNREFUSED), never plain" is a
    /// refusal and "fail-open: plain TCP works" plain.
    pub fn of(expected: &str) -> Self {
        const WORDS: [(&str, ByDesign); 6] = [
            ("reset", ByDesign::Reset),
            ("refus", ByDesign::Refused),
            ("plain", ByDesign::Plain),
            ("fallback", ByDesign::Plain),
            ("fall back", ByDesign::Plain),
            ("fail-open", ByDesign::Plain),
        ];
        let text = expected.to_ascii_lowercase();
        WORDS
            .iter()
            .filter_map(|&(word, what)| text.find(word).map(|at| (at, what)))
            .min_by_key(|&(at, _)| at)
            .map_or(Self::Unstated, |(_, what)| what)
    }

    /// The report's text for a not-applicable plaintext check of such a row.
    pub fn check_text(self) -> &'static str {
        match self {
            Self::Plain => "not applicable (plain by design)",
            Self::Reset => "not applicable (reset by design)",
            Self::Refused => "not applicable (refused by design)",
            Self::Unstated => "not applicable",
        }
    }
}

/// One scenario's result: the unit of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The group the row is listed under (`"impairment"`, `"fault"`, `"bad input"`, `"soak"`, ...).
    #[serde(default = "default_section")]
    pub section: String,
    /// What was done to the connection, e.g. `"loss 1% both ways"`.
    pub scenario: String,
    /// The outcome the RFCs (or the project's choice where they allow two) require.
    pub expected: String,
    /// How many trials ran.
    pub trials: u32,
    /// How many of them ended as expected.
    pub as_expected: u32,
    /// Application bytes moved in all trials (both directions).
    pub bytes: u64,
    /// The plaintext check of the trials' captures.
    pub plaintext_check: PlaintextCheck,
    /// Which behaviour the project chose where the RFC allows two, and anything else to know.
    #[serde(default)]
    pub notes: String,
}

fn default_section() -> String {
    DEFAULT_SECTION.to_owned()
}

impl Row {
    /// A row in the default section with no notes.
    pub fn new(
        scenario: impl Into<String>,
        expected: impl Into<String>,
        trials: u32,
        as_expected: u32,
        bytes: u64,
        plaintext_check: PlaintextCheck,
    ) -> Self {
        Self {
            section: default_section(),
            scenario: scenario.into(),
            expected: expected.into(),
            trials,
            as_expected,
            bytes,
            plaintext_check,
            notes: String::new(),
        }
    }

    /// The same row in another section.
    #[must_use]
    pub fn section(mut self, section: impl Into<String>) -> Self {
        self.section = section.into();
        self
    }

    /// The same row with notes (the chosen behaviour).
    #[must_use]
    pub fn notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = notes.into();
        self
    }

    /// The plaintext check as the report writes it: a not-applicable check says what the row
    /// expects instead ([`ByDesign::of`] its `expected` text).
    pub fn plaintext_check_text(&self) -> &'static str {
        match self.plaintext_check {
            PlaintextCheck::NotApplicable => ByDesign::of(&self.expected).check_text(),
            check => check.as_str(),
        }
    }

    /// Whether every trial ended as expected and nothing leaked.
    pub fn holds(&self) -> bool {
        self.trials > 0
            && self.as_expected == self.trials
            && self.plaintext_check != PlaintextCheck::Leak
    }

    /// Appends this row to the file named by [`OUT_ENV`]; `Ok(false)` when the variable is not
    /// set (nothing is recorded then).
    pub fn record(&self) -> io::Result<bool> {
        match std::env::var_os(OUT_ENV) {
            Some(path) if !path.is_empty() => {
                self.append_to(Path::new(&path))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Appends this row as one JSON line to `path` (created if missing). The line is written
    /// with a single `write` call on a file opened for appending, so rows from tests running in
    /// parallel do not interleave.
    pub fn append_to(&self, path: &Path) -> io::Result<()> {
        let mut line = serde_json::to_string(self).map_err(io::Error::other)?;
        line.push('\n');
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(line.as_bytes())
    }
}

/// A line of the JSON-lines file that is not a [`Row`].
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading the rows: {0}")]
    Io(#[from] io::Error),
    /// A line is not a valid row.
    #[error("line {line}: not a robustness row: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What serde said.
        source: serde_json::Error,
    },
}

/// Reads the rows of a JSON-lines file (blank lines are skipped).
pub fn read_rows(reader: impl BufRead) -> Result<Vec<Row>, ReadError> {
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|source| ReadError::Parse {
            line: i + 1,
            source,
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Merges rows with the same section and scenario: trials, counts and bytes are added, the
/// worst plaintext check is kept, distinct notes are joined. Order: sections and scenarios in
/// the order they first appear.
pub fn merge(rows: &[Row]) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for row in rows {
        let key = (row.section.clone(), row.scenario.clone());
        match index.get(&key) {
            Some(&i) => {
                let m = &mut out[i];
                m.trials = m.trials.saturating_add(row.trials);
                m.as_expected = m.as_expected.saturating_add(row.as_expected);
                m.bytes = m.bytes.saturating_add(row.bytes);
                m.plaintext_check = m.plaintext_check.max(row.plaintext_check);
                if !row.notes.is_empty() && !m.notes.contains(&row.notes) {
                    if !m.notes.is_empty() {
                        m.notes.push_str("; ");
                    }
                    m.notes.push_str(&row.notes);
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(row.clone());
            }
        }
    }
    // Group by section: the known sections in their fixed order (tests run in parallel, so
    // the order of the lines is not stable), then any other in first-appearance order; rows
    // within a section keep their first-appearance order.
    let mut sections: Vec<String> = SECTIONS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .filter(|name| out.iter().any(|r| &r.section == name))
        .collect();
    for row in &out {
        if !sections.contains(&row.section) {
            sections.push(row.section.clone());
        }
    }
    let mut grouped = Vec::with_capacity(out.len());
    for section in &sections {
        grouped.extend(out.iter().filter(|r| &r.section == section).cloned());
    }
    grouped
}

/// The known sections, in the order the document lists them, with the tests that record them.
pub const SECTIONS: [(&str, &str); 6] = [
    (
        "impairment",
        "`crates/tcpcryptd/tests/hostile.rs`: both hosts run tcpcryptd, the tcpcrypt-netsim \
         middlebox in a third network namespace impairs what crosses; each trial echoes a \
         pseudo-random stream with a plaintext canary every 4 KiB, IPv4 and IPv6 alternately, \
         and scans whole-packet captures on both sides of the box (and the box's own view) for \
         the canary",
    ),
    (
        "negotiation",
        "`crates/tcpcryptd/tests/hostile.rs`: the middlebox strips or echoes the ENO option; \
         both daemons' session tables are read while the connection is open",
    ),
    (
        "tampering",
        "`crates/tcpcryptd/tests/hostile.rs`: the middlebox flips a payload bit (checksums \
         fixed) or forges an in-window FIN or RST once per connection",
    ),
    (
        "fault",
        "`crates/tcpcryptd/tests/faults.rs`: faults of the daemon itself",
    ),
    (
        "bad input",
        "`crates/tcpcryptd/tests/bad_input.rs`: malformed input from a raw peer",
    ),
    (
        "soak",
        "`crates/tcpcryptd/tests/soak.rs`: many connections over time",
    ),
];

/// How the rows were produced: written at the top of the document.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// When (UTC), e.g. `2026-11-27 14:00 UTC`.
    pub date: String,
    /// The mode, e.g. `quick` or `long`, and what it means.
    pub mode: String,
    /// The machine (kernel, cores, memory).
    pub machine: String,
    /// The command that produced the document.
    pub command: String,
    /// The source tree the tests ran on (`git describe`-like: a commit, and whether the tree
    /// had uncommitted changes).
    pub commit: String,
}

/// Escapes a table cell (pipes and newlines would break the Markdown table).
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Formats a byte count with a binary unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Renders `docs/robustness.md` from the rows (merged first, see [`merge`]).
pub fn render(rows: &[Row], meta: &Meta) -> String {
    let rows = merge(rows);
    let mut s = String::new();
    let _ = writeln!(s, "# Robustness matrix");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Generated by the test tooling (`scripts/robustness.sh`, renderer \
         `crates/tcpcrypt-netsim/src/report.rs`); do not edit by hand."
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "- date: {}", meta.date);
    let _ = writeln!(s, "- mode: {}", meta.mode);
    let _ = writeln!(s, "- machine: {}", meta.machine);
    let _ = writeln!(s, "- command: `{}`", meta.command);
    if !meta.commit.is_empty() {
        let _ = writeln!(s, "- source: {}", meta.commit);
    }
    let total = rows.len();
    let holding = rows.iter().filter(|r| r.holds()).count();
    let trials: u64 = rows.iter().map(|r| u64::from(r.trials)).sum();
    let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
    let _ = writeln!(
        s,
        "- result: {holding} of {total} scenarios held in every trial ({trials} trials, {} moved)",
        human_bytes(bytes)
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "A scenario holds when every trial ended as expected and no capture of a connection that \
         negotiated tcpcrypt contained the plaintext canary. The check is not applicable where \
         no tcpcrypt connection is to carry the data: \"plain by design\" rows expect a plain \
         TCP connection, so the canary is on the wire there by design; \"reset by design\" and \
         \"refused by design\" rows expect the connection to be reset or refused."
    );
    let mut section: Option<&str> = None;
    for row in &rows {
        if section != Some(row.section.as_str()) {
            section = Some(row.section.as_str());
            let _ = writeln!(s);
            let _ = writeln!(s, "## {}", row.section);
            let _ = writeln!(s);
            if let Some((_, source)) = SECTIONS.iter().find(|(name, _)| *name == row.section) {
                let _ = writeln!(s, "From {source}.");
                let _ = writeln!(s);
            }
            let _ = writeln!(
                s,
                "| scenario | expected | trials | as expected | bytes | plaintext check | holds | chosen behaviour / notes |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---:|---|---|---|");
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&row.scenario),
            cell(&row.expected),
            row.trials,
            row.as_expected,
            human_bytes(row.bytes),
            row.plaintext_check_text(),
            if row.holds() { "yes" } else { "**NO**" },
            cell(&row.notes)
        );
    }
    if rows.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "No rows were recorded.");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, trials: u32, ok: u32, check: PlaintextCheck) -> Row {
        Row::new(scenario, "completes", trials, ok, 1000, check)
    }

    #[test]
    fn json_line_round_trips_with_the_documented_names() {
        let r = row("loss 1%", 3, 3, PlaintextCheck::NotApplicable).notes("plain fallback");
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""plaintext_check":"not applicable (plain by design)""#));
        assert!(line.contains(r#""section":"impairment""#));
        let back = read_rows(line.as_bytes()).unwrap();
        assert_eq!(back, vec![r]);
        let leak: Row = serde_json::from_str(
            r#"{"scenario":"x","expected":"y","trials":1,"as_expected":1,"bytes":5,"plaintext_check":"LEAK"}"#,
        )
        .unwrap();
        assert_eq!(leak.plaintext_check, PlaintextCheck::Leak);
        assert_eq!(leak.section, DEFAULT_SECTION);
        assert!(!leak.holds());
    }

    #[test]
    fn a_bad_line_is_a_typed_error_with_its_number() {
        let text = format!(
            "{}\n\n{{\"scenario\":1}}\n",
            serde_json::to_string(&row("a", 1, 1, PlaintextCheck::Clean)).unwrap()
        );
        match read_rows(text.as_bytes()) {
            Err(ReadError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn append_to_writes_one_line_per_row() {
        let dir = std::env::temp_dir().join(format!("netsim-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        let _ = std::fs::remove_file(&path);
        row("a", 1, 1, PlaintextCheck::Clean)
            .append_to(&path)
            .unwrap();
        row("b", 2, 1, PlaintextCheck::Clean)
            .append_to(&path)
            .unwrap();
        let rows = read_rows(io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].scenario, "b");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_worst_check() {
        let rows = vec![
            row("a", 2, 2, PlaintextCheck::Clean),
            row("b", 1, 1, PlaintextCheck::Clean).section("fault"),
            row("a", 3, 2, PlaintextCheck::Leak).notes("n1"),
            row("c", 1, 1, PlaintextCheck::Clean),
        ];
        let m = merge(&rows);
        assert_eq!(
            m.iter().map(|r| r.scenario.as_str()).collect::<Vec<_>>(),
            ["a", "c", "b"]
        );
        // Known sections in their fixed order, whatever order the lines came in.
        let order = merge(&[
            row("s", 1, 1, PlaintextCheck::Clean).section("soak"),
            row("x", 1, 1, PlaintextCheck::Clean).section("custom"),
            row("t", 1, 1, PlaintextCheck::Clean).section("tampering"),
            row("i", 1, 1, PlaintextCheck::Clean),
        ]);
        assert_eq!(
            order
                .iter()
                .map(|r| r.scenario.as_str())
                .collect::<Vec<_>>(),
            ["i", "t", "s", "x"]
        );
        assert_eq!((m[0].trials, m[0].as_expected, m[0].bytes), (5, 4, 2000));
        assert_eq!(m[0].plaintext_check, PlaintextCheck::Leak);
        assert_eq!(m[0].notes, "n1");
        assert!(!m[0].holds());
        assert!(m[1].holds());
    }

    #[test]
    fn render_marks_rows_that_do_not_hold_and_escapes_cells() {
        let rows = vec![
            row("ok | pipe", 2, 2, PlaintextCheck::Clean),
            row("bad", 2, 1, PlaintextCheck::Clean).section("fault"),
        ];
        let meta = Meta {
            date: "D".into(),
            mode: "quick".into(),
            machine: "M".into(),
            command: "C".into(),
            commit: "abc1234".into(),
        };
        let doc = render(&rows, &meta);
        assert!(doc.contains("- mode: quick"));
        assert!(doc.contains("- source: abc1234"));
        assert!(doc.contains("| ok \\| pipe | completes | 2 | 2 | 1000 B | clean | yes |"));
        assert!(doc.contains("## fault"));
        assert!(doc.contains("| bad | completes | 2 | 1 | 1000 B | clean | **NO** |"));
        assert!(doc.contains("1 of 2 scenarios held"));
        assert!(render(&[], &meta).contains("No rows were recorded."));
    }

    /// Expected outcomes as the robustness tests write them (docs/robustness.md).
    const RESET: &str =
        "reset by B (never a FIN), nothing of it reaches B's service, B keeps serving";
    const REFUSED: &str = "refused (ECONNREFUSED), never plain";
    const PLAIN: &str =
        "a working plain TCP connection, echo intact; neither daemon reports it encrypted";
    const FAIL_OPEN: &str = "fail-open: plain TCP works, data intact";
    const FALLBACK: &str =
        "fallback: plain TCP works, data intact, B never encrypts it; B keeps serving";
    const SERVING: &str = "B's daemon stays up and keeps serving: a concurrent encrypted \
                           transfer and new encrypted connections complete intact";

    #[test]
    fn by_design_is_the_first_outcome_the_expected_text_names() {
        assert_eq!(ByDesign::of(RESET), ByDesign::Reset);
        assert_eq!(ByDesign::of(REFUSED), ByDesign::Refused);
        assert_eq!(ByDesign::of(PLAIN), ByDesign::Plain);
        assert_eq!(ByDesign::of(FAIL_OPEN), ByDesign::Plain);
        assert_eq!(ByDesign::of(FALLBACK), ByDesign::Plain);
        assert_eq!(
            ByDesign::of("Connection RESET by the peer"),
            ByDesign::Reset
        );
        assert_eq!(ByDesign::of("plain at first, then reset"), ByDesign::Plain);
        assert_eq!(ByDesign::of(SERVING), ByDesign::Unstated);
        assert_eq!(ByDesign::of(""), ByDesign::Unstated);
    }

    #[test]
    fn render_says_what_a_not_applicable_row_expects() {
        let na = |scenario: &str, expected: &str| {
            Row::new(scenario, expected, 2, 2, 0, PlaintextCheck::NotApplicable).section("fault")
        };
        let rows = vec![
            na("bad magic", RESET),
            na("mandatory port, daemon dead", REFUSED),
            na("ENO stripped", PLAIN),
            na("random SYNs", SERVING),
            Row::new("loss", RESET, 2, 2, 0, PlaintextCheck::Clean).section("fault"),
        ];
        let doc = render(&rows, &Meta::default());
        let cell_of = |scenario: &str| {
            let line = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {scenario} |")))
                .unwrap_or_else(|| panic!("no row {scenario} in\n{doc}"));
            line.split(" | ").nth(5).unwrap().to_owned()
        };
        assert_eq!(cell_of("bad magic"), "not applicable (reset by design)");
        assert_eq!(
            cell_of("mandatory port, daemon dead"),
            "not applicable (refused by design)"
        );
        assert_eq!(cell_of("ENO stripped"), "not applicable (plain by design)");
        assert_eq!(cell_of("random SYNs"), "not applicable");
        assert_eq!(cell_of("loss"), "clean");
        // The JSON line keeps its one documented name, whatever the row expects.
        let line = serde_json::to_string(&na("bad magic", RESET)).unwrap();
        assert!(line.contains(r#""plaintext_check":"not applicable (plain by design)""#));
        // A leak is a leak, whatever the expected text says.
        let mut leak = na("bad magic", RESET);
        leak.plaintext_check = PlaintextCheck::Leak;
        assert_eq!(leak.plaintext_check_text(), "LEAK");
    }

    #[test]
    fn zero_trials_never_hold() {
        assert!(!row("a", 0, 0, PlaintextCheck::Clean).holds());
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(5), "5 B");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}

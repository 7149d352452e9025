//! What the middlebox does, per direction: the impairments of RFC 8547 §4.6, §8-10 and RFC 8548
//! §3.6-3.8, §8-9, as data. A direction's [`Impairment`] can also be written as a short spec
//! (`"loss=0.01,delay=5ms,resegment"`; see [`Impairment::parse`]), which the
//! `tcpcrypt-middlebox` binary takes on its command line.

use std::fmt;
use std::time::Duration;

/// Which segments lose their ENO option (kind 69, and the draft-era kind 253 encoding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StripEno {
    /// SYNs (no ACK flag): the "type 1" failure of RFC 8547 §9 seen from A.
    pub syn: bool,
    /// SYN-ACKs.
    pub syn_ack: bool,
    /// Every segment without SYN: the "type 2" failure (RFC 8547 §9, RFC 8548 §9) where A
    /// believes ENO succeeded and B does not.
    pub non_syn: bool,
}

impl StripEno {
    /// Whether any segment is stripped.
    pub fn any(self) -> bool {
        self.syn || self.syn_ack || self.non_syn
    }
}

/// A segment the middlebox forges toward the receiver of this direction, once per connection,
/// when `after_bytes` of payload have passed in this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// A RST (with ACK) at the next expected sequence number: in window, so the receiver
    /// accepts it (RFC 9293 §3.10.7.4; RFC 8548 §8 on forged resets).
    Rst {
        /// Payload bytes that pass first.
        after_bytes: u64,
    },
    /// A FIN (with ACK) at the next expected sequence number: a forged end of stream.
    Fin {
        /// Payload bytes that pass first.
        after_bytes: u64,
    },
}

/// Impairments applied to the packets of one direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Impairment {
    /// Probability (0..=1) that a TCP packet is dropped.
    pub loss: f64,
    /// Probability that a TCP packet is held back by [`reorder_gap`](Self::reorder_gap) so the
    /// packets after it overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back (default 3 ms when zero).
    pub reorder_gap: Duration,
    /// Probability that a TCP packet is sent twice.
    pub duplicate: f64,
    /// Fixed one-way delay added to every TCP packet.
    pub delay: Duration,
    /// Uniform extra delay in `0..jitter` (reorders packets as a side effect).
    pub jitter: Duration,
    /// Re-cut the TCP byte stream at new boundaries: in-order payload is gathered per
    /// connection and sent again in segments of random size (splitting segments, and joining
    /// the tail of one to the head of the next), byte stream intact.
    pub resegment: bool,
    /// Strip ENO from these segments.
    pub strip_eno: StripEno,
    /// Echo the connection's SYN's ENO option in the SYN-ACK (in place of the SYN-ACK's own
    /// ENO, if any; its other options are kept): the load balancer of RFC 8547 §9 that echoes
    /// the SYN options it does not know. Set on the direction that carries SYN-ACKs. (Echoing
    /// every option, timestamps included, would break plain TCP itself through PAWS.)
    pub echo_syn_options: bool,
    /// Flip one bit of the payload of the first data segment that ends past this many payload
    /// bytes of a connection (once per connection), checksums fixed so TCP accepts it.
    pub flip_after: Option<u64>,
    /// Forge a RST or FIN toward this direction's receiver.
    pub inject: Option<Inject>,
}

/// A cut of the path (both directions): every frame is dropped from the moment `after_bytes`
/// of TCP payload (both directions together) have crossed the box, for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCut {
    /// Payload bytes that cross before the cut.
    pub after_bytes: u64,
    /// How long the path stays cut.
    pub duration: Duration,
}

/// The whole middlebox: one [`Impairment`] per direction, an optional path cut, the RNG seed,
/// the link MTU (the largest IP packet resegmentation emits) and an optional canary that the
/// box counts in the TCP payloads it sees (a capture point of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Packets from A's side to B's side.
    pub a_to_b: Impairment,
    /// Packets from B's side to A's side.
    pub b_to_a: Impairment,
    /// A cut of the path.
    pub cut: Option<PathCut>,
    /// Seed of the box's random choices.
    pub seed: u64,
    /// The largest IP packet (bytes) that resegmentation emits.
    pub mtu: usize,
    /// Bytes counted in every TCP payload the box sees (before impairment).
    pub canary: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            a_to_b: Impairment::default(),
            b_to_a: Impairment::default(),
            cut: None,
            seed: 1,
            mtu: 1500,
            canary: None,
        }
    }
}

impl Config {
    /// The same impairment both ways.
    pub fn both(imp: Impairment) -> Self {
        Self {
            a_to_b: imp.clone(),
            b_to_a: imp,
            ..Self::default()
        }
    }
}

/// A spec that [`Impairment::parse`] or [`parse_cut`] did not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad impairment `{item}`: {why}")]
pub struct SpecError {
    /// The item.
    pub item: String,
    /// What is wrong with it.
    pub why: &'static str,
}

fn err(item: &str, why: &'static str) -> SpecError {
    SpecError {
        item: item.to_owned(),
        why,
    }
}

/// Parses `5ms`, `2s`, `1.5s`, `300us`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (num, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| text.split_at(i))?;
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn parse_prob(item: &str, v: &str) -> Result<f64, SpecError> {
    let p: f64 = v.parse().map_err(|_| err(item, "not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(err(item, "a probability must be within 0..=1"))
    }
}

impl Impairment {
    /// Parses a comma-separated spec. Items: `loss=P`, `reorder=P`, `reorder-gap=DUR`,
    /// `dup=P`, `delay=DUR`, `jitter=DUR`, `resegment`, `strip-eno=syn|syn-ack|non-syn` (may
    /// repeat), `echo-syn-options`, `flip-after=N`, `rst-after=N`, `fin-after=N`. Probabilities
    /// are fractions (`0.01` is 1%); durations take `s`, `ms`, `us`. An empty spec is no
    /// impairment.
    ///
    /// # Errors
    /// [`SpecError`] naming the item.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let mut imp = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            let need = |v: Option<&'_ str>| {
                v.map(str::to_owned)
                    .ok_or_else(|| err(item, "needs a value"))
            };
            let dur = |v: Option<&str>| {
                need(v).and_then(|v| parse_duration(&v).ok_or_else(|| err(item, "bad duration")))
            };
            let bytes = |v: Option<&str>| {
                need(v).and_then(|v| v.parse::<u64>().map_err(|_| err(item, "bad byte count")))
            };
            match key {
                "loss" => imp.loss = parse_prob(item, &need(value)?)?,
                "reorder" => imp.reorder = parse_prob(item, &need(value)?)?,
                "reorder-gap" => imp.reorder_gap = dur(value)?,
                "dup" => imp.duplicate = parse_prob(item, &need(value)?)?,
                "delay" => imp.delay = dur(value)?,
                "jitter" => imp.jitter = dur(value)?,
                "resegment" if value.is_none() => imp.resegment = true,
                "echo-syn-options" if value.is_none() => imp.echo_syn_options = true,
                "strip-eno" => match need(value)?.as_str() {
                    "syn" => imp.strip_eno.syn = true,
                    "syn-ack" => imp.strip_eno.syn_ack = true,
                    "non-syn" => imp.strip_eno.non_syn = true,
                    _ => return Err(err(item, "strip-eno takes syn, syn-ack or non-syn")),
                },
                "flip-after" => imp.flip_after = Some(bytes(value)?),
                "rst-after" => {
                    imp.inject = Some(Inject::Rst {
                        after_bytes: bytes(value)?,
                    });
                }
                "fin-after" => {
                    imp.inject = Some(Inject::Fin {
                        after_bytes: bytes(value)?,
                    });
                }
                _ => return Err(err(item, "unknown impairment")),
            }
        }
        Ok(imp)
    }
}

/// Parses a path cut spec `after=BYTES,for=DUR`.
///
/// # Errors
/// [`SpecError`] naming the item.
pub fn parse_cut(spec: &str) -> Result<PathCut, SpecError> {
    let mut after = None;
    let mut dur = None;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some(("after", v)) => {
                after = Some(v.parse().map_err(|_| err(item, "bad byte count"))?);
            }
            Some(("for", v)) => {
                dur = Some(parse_duration(v).ok_or_else(|| err(item, "bad duration"))?)
            }
            _ => return Err(err(item, "a cut is after=BYTES,for=DURATION")),
        }
    }
    match (after, dur) {
        (Some(after_bytes), Some(duration)) => Ok(PathCut {
            after_bytes,
            duration,
        }),
        _ => Err(err(spec, "a cut needs both after= and for=")),
    }
}

impl fmt::Display for Impairment {
    /// The spec form ([`Impairment::parse`] reads it back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        let ms = |d: Duration| format!("{}ms", d.as_secs_f64() * 1e3);
        if self.loss > 0.0 {
            items.push(format!("loss={}", self.loss));
        }
        if self.reorder > 0.0 {
            items.push(format!("reorder={}", self.reorder));
        }
        if !self.reorder_gap.is_zero() {
            items.push(format!("reorder-gap={}", ms(self.reorder_gap)));
        }
        if self.duplicate > 0.0 {
            items.push(format!("dup={}", self.duplicate));
        }
        if !self.delay.is_zero() {
            items.push(format!("delay={}", ms(self.delay)));
        }
        if !self.jitter.is_zero() {
            items.push(format!("jitter={}", ms(self.jitter)));
        }
        if self.resegment {
            items.push("resegment".into());
        }
        for (on, name) in [
            (self.strip_eno.syn, "syn"),
            (self.strip_eno.syn_ack, "syn-ack"),
            (self.strip_eno.non_syn, "non-syn"),
        ] {
            if on {
                items.push(format!("strip-eno={name}"));
            }
        }
        if self.echo_syn_options {
            items.push("echo-syn-options".into());
        }
        if let Some(n) = self.flip_after {
            items.push(format!("flip-after={n}"));
        }
        match self.inject {
            Some(Inject::Rst { after_bytes }) => items.push(format!("rst-after={after_bytes}")),
            Some(Inject::Fin { after_bytes }) => items.push(format!("fin-after={after_bytes}")),
            None => {}
        }
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let spec =
            "loss=0.01,reorder=0.05,reorder-gap=2ms,dup=0.02,delay=5ms,jitter=1ms,resegment,\
                    strip-eno=syn,strip-eno=non-syn,echo-syn-options,flip-after=100,rst-after=7";
        let imp = Impairment::parse(spec).unwrap();
        assert_eq!(imp.loss, 0.01);
        assert_eq!(imp.delay, Duration::from_millis(5));
        assert!(imp.strip_eno.syn && imp.strip_eno.non_syn && !imp.strip_eno.syn_ack);
        assert_eq!(imp.inject, Some(Inject::Rst { after_bytes: 7 }));
        assert_eq!(Impairment::parse(&imp.to_string()).unwrap(), imp);
        assert_eq!(Impairment::parse("").unwrap(), Impairment::default());
        assert_eq!(Impairment::default().to_string(), "none");
    }

    #[test]
    fn bad_specs_are_typed_errors() {
        for bad in [
            "loss=2",
            "loss=x",
            "loss",
            "delay=5",
            "delay=-1ms",
            "strip-eno=ack",
            "bogus",
            "resegment=1",
            "rst-after=-3",
        ] {
            let e = Impairment::parse(bad).unwrap_err();
            assert!(
                bad.starts_with(e.item.split('=').next().unwrap()),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            parse_cut("after=1000,for=2s").unwrap(),
            PathCut {
                after_bytes: 1000,
                duration: Duration::from_secs(2)
            }
        );
        assert!(parse_cut("after=1000").is_err());
        assert!(parse_cut("for=1s,x=2").is_err());
    }
}

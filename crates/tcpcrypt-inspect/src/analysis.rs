//! What the TCP-ENO options of a connection's handshake say (RFC 8547 §4; RFC 8548 §3.2, §3.5):
//! each host's SYN-form option decoded, roles, the negotiated TEP and the outcome, with the
//! fallback rule by the core's own name ([`FallbackReason::name`]).
//!
//! Selection itself is the core's ([`tcpcrypt_proto::eno::observe`]); this module only finds
//! the options in the captured segments and applies the per-segment rules of §4.1 and §4.6
//! (one ENO option per SYN, the legacy kind-253 encoding, ENO in the first ACK).

use tcpcrypt_proto::eno::{observe, resumption_attempt, FallbackReason, Observed};
use tcpcrypt_proto::resume::Offer;
use tcpcrypt_proto::wire::eno::SynEnoRepr;
use tcpcrypt_proto::wire::tcp_option::{TcpOption, TcpOptions};
use tcpcrypt_proto::{Role, TepId};

use crate::flow::{Connection, Segment};
use crate::report::{
    kind, Anomaly, EnoReport, Outcome, ResumptionReport, Roles, SynOptionReport, TepReport,
};

/// The ENO facts of one options area (RFC 8547 §4.1, §11).
#[derive(Debug, Clone, Default)]
struct OptionScan {
    /// The first kind-69 option, whole.
    eno: Option<Vec<u8>>,
    eno_count: usize,
    legacy_count: usize,
    malformed: bool,
}

fn scan(area: &[u8]) -> OptionScan {
    let mut s = OptionScan::default();
    for option in TcpOptions::new(area) {
        match option {
            Ok(TcpOption::Eno(eno)) => {
                s.eno_count += 1;
                s.eno.get_or_insert_with(|| eno.as_bytes().to_vec());
            }
            Ok(TcpOption::LegacyEno { .. }) => s.legacy_count += 1,
            Ok(_) => {}
            Err(_) => s.malformed = true,
        }
    }
    s
}

/// The ENO analysis of one connection.
#[derive(Debug, Clone)]
pub struct EnoAnalysis {
    /// The decoded options, for the report.
    pub report: EnoReport,
    /// The outcome as far as the handshake shows it.
    pub outcome: Outcome,
    /// The fallback rule, for [`Outcome::Fallback`].
    pub fallback_reason: Option<String>,
    /// The client's SYN-form option, whole.
    pub client_option: Option<Vec<u8>>,
    /// The server's SYN-form option, whole.
    pub server_option: Option<Vec<u8>>,
    /// The client's role, once the b bits assign one.
    pub client_role: Option<Role>,
    /// The selection for a fresh session (no secret needed).
    pub observed: Option<Observed>,
    /// A resumption that host B accepted, to be confirmed with a key-log secret.
    pub resumption_tep: Option<TepId>,
    /// What was wrong.
    pub anomalies: Vec<Anomaly>,
}

/// The first SYN-flagged segment of one host, and whether later SYNs changed the option.
fn syn_of(conn: &Connection, client: bool) -> (Option<&Segment>, bool) {
    let mut syns = conn
        .segments
        .iter()
        .filter(|s| s.from_client == client && s.syn());
    // The client's SYN is SYN-only; the server's is its SYN-ACK (or SYN, simultaneous open).
    let first = syns.next();
    let changed = first.is_some_and(|f| {
        let own = scan(&f.options).eno;
        syns.any(|s| scan(&s.options).eno != own)
    });
    (first, changed)
}

fn decode(option: &[u8]) -> SynOptionReport {
    let contents = option.get(2..).unwrap_or(&[]);
    match SynEnoRepr::parse_contents(contents) {
        Ok(repr) => SynOptionReport {
            hex: hex::encode(option),
            b: repr.global().b,
            a: repr.global().a,
            teps: repr
                .teps()
                .iter()
                .map(|t| TepReport {
                    id: format!("{:#04x}", t.tep.get()),
                    name: t.tep.name().map(str::to_owned),
                    v: t.v,
                    data: hex::encode(t.data),
                    resumption: match (t.tep.is_tcpcrypt(), Offer::classify(t)) {
                        (true, Offer::Resume { half, nonce }) => Some(ResumptionReport {
                            identifier_half: hex::encode(half),
                            nonce: hex::encode(nonce),
                        }),
                        _ => None,
                    },
                })
                .collect(),
            error: None,
        },
        Err(e) => SynOptionReport {
            hex: hex::encode(option),
            b: false,
            a: false,
            teps: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// The §4.1/§11 checks on one host's SYN: exactly one well-formed kind-69 option.
fn check_syn(s: &OptionScan) -> Result<Vec<u8>, FallbackReason> {
    match (s.eno_count, s.legacy_count, &s.eno) {
        (0, 0, _) => Err(FallbackReason::MissingEno),
        (0, _, _) => Err(FallbackReason::LegacyEnoOnly),
        (1, 0, Some(eno)) => {
            SynEnoRepr::parse_contents(eno.get(2..).unwrap_or(&[]))
                .map_err(FallbackReason::IllFormedEno)?;
            Ok(eno.clone())
        }
        _ => Err(FallbackReason::DuplicateEno),
    }
}

/// Analyses the handshake of `conn`.
pub fn analyze(conn: &Connection) -> EnoAnalysis {
    let mut a = EnoAnalysis {
        report: EnoReport::default(),
        outcome: Outcome::Incomplete,
        fallback_reason: None,
        client_option: None,
        server_option: None,
        client_role: None,
        observed: None,
        resumption_tep: None,
        anomalies: Vec::new(),
    };
    let (client_syn, client_changed) = syn_of(conn, true);
    let (server_syn, server_changed) = syn_of(conn, false);
    for (changed, who) in [(client_changed, "client"), (server_changed, "server")] {
        if changed {
            a.anomalies.push(Anomaly::new(
                kind::SYN_OPTION_CHANGED,
                format!("the {who}'s SYN retransmission carries another ENO option"),
            ));
        }
    }
    let cs = client_syn.map(|s| scan(&s.options)).unwrap_or_default();
    let ss = server_syn.map(|s| scan(&s.options)).unwrap_or_default();
    a.report.client = cs.eno.as_deref().map(decode);
    a.report.server = ss.eno.as_deref().map(decode);
    a.report.client_legacy = cs.legacy_count > 0;
    a.report.server_legacy = ss.legacy_count > 0;
    // The first segment with ACK the client sent: the third segment of a three-way
    // handshake, or its SYN-ACK in a simultaneous open (§4.6: ENO in every segment up to and
    // including the first ACK).
    let first_ack = conn.segments.iter().find(|s| s.from_client && s.ack());
    a.report.client_first_ack_eno = first_ack.map(|s| scan(&s.options).eno_count > 0);

    let Some(_) = client_syn else {
        a.anomalies.push(Anomaly::new(
            kind::NO_HANDSHAKE,
            "the capture holds no SYN from the client",
        ));
        return a;
    };
    let client_option = match check_syn(&cs) {
        Ok(o) => o,
        Err(FallbackReason::MissingEno) => {
            a.outcome = Outcome::Plain;
            return a;
        }
        Err(reason) => return fall_back(a, reason),
    };
    a.client_option = Some(client_option.clone());
    if server_syn.is_none() {
        return a;
    }
    let server_option = match check_syn(&ss) {
        Ok(o) => o,
        Err(reason) => return fall_back(a, reason),
    };
    a.server_option = Some(server_option.clone());
    match observe(&client_option, &server_option, None) {
        Ok(obs) => {
            a.client_role = Some(obs.first_role);
            a.observed = Some(obs);
        }
        Err(FallbackReason::NoValidTep) => {
            let client_b = a.report.client.as_ref().is_some_and(|o| o.b);
            let (ao, bo) = if client_b {
                (&server_option, &client_option)
            } else {
                (&client_option, &server_option)
            };
            match resumption_attempt(ao, bo) {
                Some(tep) => {
                    a.client_role = Some(if client_b { Role::B } else { Role::A });
                    a.resumption_tep = Some(tep);
                }
                None => return fall_back(a, FallbackReason::NoValidTep),
            }
        }
        Err(reason) => return fall_back(a, reason),
    }
    if a.report.client_first_ack_eno == Some(false) {
        a.anomalies.push(Anomaly::new(
            kind::MISSING_ENO_FIRST_ACK,
            "both SYNs carried ENO but the client's first ACK did not (RFC 8547 §4.6)",
        ));
        a.client_role = None;
        return fall_back(a, FallbackReason::MissingEno);
    }
    a.outcome = Outcome::Tcpcrypt;
    a
}

fn fall_back(mut a: EnoAnalysis, reason: FallbackReason) -> EnoAnalysis {
    a.outcome = Outcome::Fallback;
    a.fallback_reason = Some(reason.name().to_owned());
    a.observed = None;
    a.resumption_tep = None;
    a
}

impl EnoAnalysis {
    /// The roles for the report.
    pub fn roles(&self) -> Option<Roles> {
        let name = |r: Role| match r {
            Role::A => "A".to_owned(),
            Role::B => "B".to_owned(),
        };
        self.client_role.map(|r| Roles {
            client: name(r),
            server: name(r.peer()),
        })
    }

    /// Either SYN carried the legacy option.
    pub fn legacy_seen(&self) -> bool {
        self.report.client_legacy || self.report.server_legacy
    }
}

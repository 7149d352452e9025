//! Wire tests for the ENO option (RFC 8547 §4.1-§4.4, §6), smoltcp style.

use proptest::prelude::*;

use super::*;

const C25519: TepId = TepId::TCPCRYPT_ECDHE_CURVE25519;
const P256: TepId = TepId::TCPCRYPT_ECDHE_P256;

fn tep(tep: TepId) -> TepSuboption<'static> {
    TepSuboption {
        tep,
        v: false,
        data: &[],
    }
}

fn parse(bytes: &[u8]) -> Result<SynEnoRepr<'_>, DecodeError> {
    SynEnoRepr::parse(&EnoOption::new_checked(bytes)?)
}

#[test]
fn deconstruct_rfc8547_section6_examples() {
    // A's SYN: 45 03 23.
    let a = EnoOption::new_checked(&[0x45u8, 0x03, 0x23][..]).unwrap();
    assert_eq!((a.kind(), a.length(), a.contents()), (69, 3, &[0x23][..]));
    let a = SynEnoRepr::parse(&a).unwrap();
    assert_eq!(a.explicit_global(), None);
    assert_eq!(
        a.global(),
        GlobalSuboption::default(),
        "implicit global is 0x00 (§4.2)"
    );
    assert_eq!(a.teps(), &[tep(C25519)]);
    // B's SYN-ACK: 45 04 01 23.
    let b = parse(&[0x45, 0x04, 0x01, 0x23]).unwrap();
    assert_eq!(b.global(), GlobalSuboption { b: true, a: false });
    assert_eq!(b.teps(), &[tep(C25519)]);
    // A's ACK: 45 02, non-SYN form.
    let ack = EnoOption::new_checked(&NON_SYN_ENO[..]).unwrap();
    assert_eq!(EnoRepr::parse(&ack, false), Ok(EnoRepr::NonSyn));
    // The same bytes in a SYN are a vacuous SYN-form option.
    assert!(matches!(EnoRepr::parse(&ack, true), Ok(EnoRepr::Syn(s)) if s.is_vacuous()));
}

#[test]
fn construct_rfc8547_section6_examples() {
    let a = SynEnoRepr::new(None, vec![tep(C25519)]).unwrap();
    assert_eq!(a.to_vec(), [0x45, 0x03, 0x23]);
    let b = SynEnoRepr::new(
        Some(GlobalSuboption { b: true, a: false }),
        vec![tep(C25519)],
    );
    assert_eq!(b.unwrap().to_vec(), [0x45, 0x04, 0x01, 0x23]);
    let mut buf = [0u8; 2];
    EnoRepr::NonSyn.emit(&mut EnoOption::new_unchecked(&mut buf[..]));
    assert_eq!(buf, NON_SYN_ENO);
    assert_eq!(EnoRepr::NonSyn.buffer_len(), 2);
}

#[test]
fn data_suboptions_and_length_bytes() {
    let data = [0xaa, 0xbb];
    // Non-last data suboption: emit writes the length byte 0x81 itself.
    let repr = SynEnoRepr::new(
        None,
        vec![
            TepSuboption {
                tep: C25519,
                v: true,
                data: &data,
            },
            tep(P256),
        ],
    )
    .unwrap();
    let bytes = repr.to_vec();
    assert_eq!(bytes, [0x45, 0x07, 0x81, 0xa3, 0xaa, 0xbb, 0x21]);
    assert_eq!(parse(&bytes).unwrap(), repr);
    // Last data suboption: no length byte, data runs to the end.
    let repr = SynEnoRepr::new(
        None,
        vec![
            tep(P256),
            TepSuboption {
                tep: C25519,
                v: true,
                data: &data,
            },
        ],
    )
    .unwrap();
    assert_eq!(repr.to_vec(), [0x45, 0x06, 0x21, 0xa3, 0xaa, 0xbb]);
    // A last suboption may exceed 32 data bytes (§4.4).
    let long = [0x55u8; 35];
    let repr = SynEnoRepr::new(
        None,
        vec![TepSuboption {
            tep: C25519,
            v: true,
            data: &long,
        }],
    );
    assert_eq!(repr.unwrap().buffer_len(), 38);
    // A last suboption with a length byte parses, and is re-emitted without one.
    let with_len = [0x45, 0x06, 0x81, 0xa3, 0xaa, 0xbb];
    let repr = parse(&with_len).unwrap();
    assert_eq!(
        repr.teps(),
        &[TepSuboption {
            tep: C25519,
            v: true,
            data: &data
        }]
    );
    assert_eq!(repr.to_vec(), [0x45, 0x05, 0xa3, 0xaa, 0xbb]);
    // A v=1 byte at the very end has empty data.
    let repr = parse(&[0x45, 0x04, 0x21, 0xa3]).unwrap();
    assert_eq!(
        repr.teps()[1],
        TepSuboption {
            tep: C25519,
            v: true,
            data: &[]
        }
    );
    assert_eq!(repr.teps()[1].byte(), 0xa3);
}

#[test]
fn only_first_global_counts_and_z_bits_ignored() {
    let repr = parse(&[0x45, 0x05, 0x1d, 0x23, 0x02]).unwrap();
    // 0x1d = z1 z2 z3 b: z ignored; the later 0x02 (a) is ignored too (§4.2).
    assert_eq!(repr.global(), GlobalSuboption { b: true, a: false });
    assert_eq!(repr.teps(), &[tep(C25519)]);
    assert_eq!(
        repr.to_vec(),
        [0x45, 0x04, 0x01, 0x23],
        "z bits are sent as 0"
    );
}

#[test]
fn truncated_and_impossible_option() {
    assert_eq!(
        EnoOption::new_checked(&[0x45u8][..]),
        Err(DecodeError::truncated("ENO option"))
    );
    assert_eq!(
        EnoOption::new_checked(&[0x46u8, 0x02][..]),
        Err(DecodeError::invalid("ENO option kind"))
    );
    assert_eq!(
        EnoOption::new_checked(&[0x45u8, 0x04, 0x23][..]),
        Err(DecodeError::invalid("ENO option length"))
    );
    let mut too_long = vec![0x45, 41];
    too_long.resize(41, 0x23);
    assert_eq!(parse(&too_long), Err(DecodeError::too_long("ENO option")));
}

/// Every malformed SYN-form case RFC 8547 §4.4 names.
#[test]
fn malformed_syn_form_table() {
    let overrun = DecodeError::truncated("ENO suboption data");
    let bad_follow = DecodeError::invalid("suboption after ENO length byte");
    let cases: &[(&[u8], DecodeError)] = &[
        // Length byte as the last byte: nothing follows.
        (&[0x45, 0x03, 0x80], overrun),
        // Length byte followed by a global suboption (0x00-0x1f).
        (&[0x45, 0x05, 0x80, 0x01, 0x00], bad_follow),
        // ... by a TEP without data (0x20-0x7f).
        (&[0x45, 0x05, 0x80, 0x23, 0x00], bad_follow),
        // ... by another length byte (0x80-0x9f).
        (&[0x45, 0x05, 0x80, 0x9f, 0x00], bad_follow),
        (&[0x45, 0x05, 0x81, 0x80, 0xa3], bad_follow),
        // Length overrun: 0x81 announces 2 bytes, 1 present.
        (&[0x45, 0x05, 0x81, 0xa3, 0xaa], overrun),
        // 0x9f announces 32 bytes.
        (&[0x45, 0x06, 0x9f, 0xa3, 0, 0], overrun),
        // Overrun after a valid suboption.
        (&[0x45, 0x06, 0x23, 0x82, 0xa1, 0x00], overrun),
    ];
    for (bytes, err) in cases {
        assert_eq!(parse(bytes), Err(*err), "{bytes:02x?}");
    }
}

#[test]
fn new_rejects_unencodable() {
    let data = [0u8; 33];
    let err = |teps| SynEnoRepr::new(None, teps).unwrap_err();
    assert_eq!(
        err(vec![TepSuboption {
            tep: C25519,
            v: false,
            data: &data[..1]
        }]),
        DecodeError::invalid("ENO TEP suboption data")
    );
    let length_byte = DecodeError::invalid("ENO length byte");
    assert_eq!(
        err(vec![
            TepSuboption {
                tep: C25519,
                v: true,
                data: &[]
            },
            tep(P256)
        ]),
        length_byte
    );
    assert_eq!(
        err(vec![
            TepSuboption {
                tep: C25519,
                v: true,
                data: &data
            },
            tep(P256)
        ]),
        length_byte
    );
    assert_eq!(
        err(vec![TepSuboption {
            tep: C25519,
            v: true,
            data: &[0u8; 38]
        }]),
        DecodeError::too_long("ENO option")
    );
}

/// (b, a) of an optional global suboption, and (glt, v, data) of each TEP suboption.
type ArbRepr = (Option<(bool, bool)>, Vec<(u8, bool, Vec<u8>)>);

fn arb_repr() -> impl Strategy<Value = ArbRepr> {
    (
        proptest::option::of((any::<bool>(), any::<bool>())),
        proptest::collection::vec(
            (
                0x20u8..=0x7f,
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..12),
            ),
            0..5,
        ),
    )
}

proptest! {
    #[test]
    fn repr_round_trip((global, teps) in arb_repr()) {
        let subs: Vec<TepSuboption<'_>> = teps
            .iter()
            .map(|(g, v, d)| TepSuboption {
                tep: TepId::new(*g).unwrap(),
                v: *v,
                data: if *v { d } else { &[] },
            })
            .collect();
        let global = global.map(|(b, a)| GlobalSuboption { b, a });
        if let Ok(repr) = SynEnoRepr::new(global, subs) {
            let bytes = repr.to_vec();
            prop_assert_eq!(bytes.len(), repr.buffer_len());
            prop_assert_eq!(parse(&bytes), Ok(repr));
        }
    }

    /// Parsing is total, and whatever parses re-emits within bounds and re-parses to itself.
    #[test]
    fn parse_never_panics(contents in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(repr) = SynEnoRepr::parse_contents(&contents) {
            prop_assert!(repr.buffer_len() <= contents.len() + 2);
            let again = SynEnoRepr::new(repr.explicit_global(), repr.teps().to_vec());
            prop_assert_eq!(again.as_ref(), Ok(&repr));
            let bytes = repr.to_vec();
            prop_assert_eq!(parse(&bytes), Ok(repr));
        }
        let mut option = vec![0x45, contents.len().saturating_add(2).min(255) as u8];
        option.extend(&contents);
        if let Ok(o) = EnoOption::new_checked(&option[..]) {
            let _ = EnoRepr::parse(&o, true);
            let _ = EnoRepr::parse(&o, false);
        }
    }
}

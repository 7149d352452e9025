//! Socket options against the kernel, each test in its own namespace: SO_ORIGINAL_DST through
//! a nat OUTPUT REDIRECT (v4 and v6), read-back of SO_MARK, IP(V6)_TRANSPARENT, SO_LINGER and
//! TCP_NODELAY, the RST of an abortive close, and the namespace guard itself.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tcpcrypt_sys::netns::NetNs;
use tcpcrypt_sys::rules::{Family, Hook, RuleSet, Table};
use tcpcrypt_sys::sockopt::{self, SockoptError};

fn original_dst_through_redirect(family: Family, listen: SocketAddr, original: SocketAddr) {
    let ns = common::netns();
    ns.run(|| {
        let mut set = RuleSet::new("TCS_");
        let dst = original.ip().to_string();
        set.chain(family, Table::Nat, Hook::Output, "NOUT").rule(&[
            "-p",
            "tcp",
            "-d",
            &dst,
            "--dport",
            "8080",
            "-j",
            "REDIRECT",
            "--to-ports",
            "9000",
        ]);
        let rules = set.install().unwrap();
        let listener = TcpListener::bind(listen).unwrap();

        let _client = TcpStream::connect(original).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.local_addr().unwrap(), listen, "redirected");
        assert_eq!(sockopt::original_dst(&accepted).unwrap(), original);

        // A connection that was not NATed reports its own destination.
        let _direct = TcpStream::connect(listen).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(sockopt::original_dst(&accepted).unwrap(), listen);
        rules.remove().unwrap();
    })
    .unwrap();
}

#[test]
fn original_dst_v4() {
    original_dst_through_redirect(
        Family::V4,
        ([127, 0, 0, 1], 9000).into(),
        ([127, 0, 0, 2], 8080).into(),
    );
}

#[test]
fn original_dst_v6() {
    original_dst_through_redirect(
        Family::V6,
        (Ipv6Addr::LOCALHOST, 9000).into(),
        (Ipv6Addr::LOCALHOST, 8080).into(),
    );
}

#[test]
fn original_dst_without_conntrack_is_a_typed_error() {
    let ns = common::netns();
    ns.run(|| {
        // No NAT table in this namespace: conntrack has no entry for the connection.
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let err = sockopt::original_dst(&accepted).unwrap_err();
        assert!(matches!(err, SockoptError::NoOriginalDst), "{err}");
    })
    .unwrap();
}

#[test]
fn options_read_back_and_abortive_close_resets() {
    let ns = common::netns();
    ns.run(|| {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = TcpListener::bind(addr).unwrap();
            assert!(!sockopt::transparent(&listener).unwrap());
            sockopt::set_transparent(&listener, true).unwrap();
            assert!(sockopt::transparent(&listener).unwrap());

            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            sockopt::set_mark(&client, 0x42).unwrap();
            assert_eq!(sockopt::mark(&client).unwrap(), 0x42);
            sockopt::set_nodelay(&client, true).unwrap();
            assert!(sockopt::nodelay(&client).unwrap());
            assert_eq!(sockopt::linger(&client).unwrap(), None);
            sockopt::set_linger_zero(&client).unwrap();
            assert_eq!(sockopt::linger(&client).unwrap(), Some(Duration::ZERO));

            // SO_LINGER 0 turns close into a RST: the peer sees a reset, not EOF.
            drop(client);
            server
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let err = server.read(&mut [0u8; 1]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        }
    })
    .unwrap();
}

#[test]
fn unix_socket_has_no_original_dst() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let err = sockopt::original_dst(&a).unwrap_err();
    assert!(
        matches!(err, SockoptError::UnsupportedFamily { .. }),
        "{err}"
    );
    assert!(matches!(
        sockopt::set_transparent(&a, true),
        Err(SockoptError::UnsupportedFamily { .. })
    ));
}

#[test]
fn namespace_is_deleted_even_when_the_code_inside_panics() {
    common::require_root();
    let mut name = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = NetNs::create_unique("tcpcrypt-sys-test").unwrap();
        name = ns.name().to_owned();
        assert!(common::sh(&["ip", "netns", "list"]).contains(&name));
        ns.run(|| panic!("inside the namespace")).unwrap();
    }));
    assert!(result.is_err());
    assert!(!name.is_empty());
    let list = common::sh(&["ip", "netns", "list"]);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "{list}"
    );
}

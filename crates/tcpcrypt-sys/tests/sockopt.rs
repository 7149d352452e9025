//! Socket options against the kernel, each test in its own namespace: read-back of SO_MARK,
//! IP(V6)_TRANSPARENT, SO_LINGER and TCP_NODELAY, the RST of an abortive close, and the
//! namespace guard itself.

mod common;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tcpcrypt_sys::netns::NetNs;
use tcpcrypt_sys::sockopt::{self, SockoptError};

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
fn unix_socket_has_no_ip_options() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
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

//! End to end (namespaces A and B, as root): an application port reused for another
//! destination. The first connection's REDIRECT NAT entry lingers in conntrack after it closed;
//! the second connection from the same port then maps to the same post-NAT tuple, and NAT gives
//! it another source port towards A's listener. The daemon must still find its pre-connected
//! upstream: the connection works, is encrypted, and the control socket shows the
//! application's real port. The daemon asks conntrack for the original tuple, so this holds
//! with many such connections to one destination at once (a guess by destination would be
//! ambiguous there).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::hosts::{addr, exchange, finish, wait_encrypted, Net, PORT, TIMEOUT};

const OTHER: u16 = 8096;

fn connect_from(net: &Net, port: u16, dst: SocketAddr) -> std::io::Result<TcpStream> {
    net.a
        .run(move || {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::new(addr('a', false, 0).ip(), port).into())?;
            s.connect_timeout(&dst.into(), TIMEOUT)?;
            Ok(s.into())
        })
        .unwrap()
}

#[test]
fn a_source_port_reused_for_another_destination_is_encrypted() {
    let net = Net::new();
    net.echo_service();
    net.service(OTHER, |mut c| {
        let mut b = [0u8; 5];
        if c.read_exact(&mut b).is_ok() {
            let _ = c.write_all(&b);
        }
    });
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    for (i, port) in [45001u16, 45002].into_iter().enumerate() {
        let mut s = connect_from(&net, port, addr('b', false, PORT)).expect("first connection");
        exchange(&mut s, b"hello");
        wait_encrypted(&ca, s.local_addr().unwrap());
        finish(s);
        // Same port, another destination: NAT remaps it (the first one's entry lingers).
        let mut s = connect_from(&net, port, addr('b', false, OTHER)).expect("second connection");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let row = wait_encrypted(&ca, s.local_addr().unwrap());
        assert_eq!(
            row.local.port(),
            port,
            "round {i}: the application's own port"
        );
        s.write_all(b"again").unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).expect("the second connection's echo");
        assert_eq!(&b, b"again");
    }
    assert!(
        net.log("a").contains("source port remapped by NAT"),
        "the NAT remapped the port (else this test tests nothing)"
    );
}

/// Twenty application ports, each first used for PORT and closed, then all reused at once for
/// OTHER: every new connection is remapped by the NAT, and twenty upstreams wait for the same
/// destination at the same time, so only the exact original tuple tells them apart.
#[test]
fn many_reused_ports_to_one_destination_at_once_are_each_encrypted() {
    let net = Net::new();
    net.echo_service();
    net.service(OTHER, |mut c| {
        let mut b = [0u8; 5];
        if c.read_exact(&mut b).is_ok() {
            let _ = c.write_all(&b);
        }
    });
    let (_da, ca) = net.daemon(&net.a, "a");
    let (_db, _cb) = net.daemon(&net.b, "b");
    let ports: Vec<u16> = (45010..45030).collect();
    for &port in &ports {
        let mut s = connect_from(&net, port, addr('b', false, PORT)).expect("first connection");
        exchange(&mut s, b"hello");
        finish(s);
    }
    let net = &net;
    let ca = &ca;
    std::thread::scope(|scope| {
        let threads: Vec<_> = ports
            .iter()
            .map(|&port| {
                scope.spawn(move || {
                    let mut s = connect_from(net, port, addr('b', false, OTHER))
                        .unwrap_or_else(|e| panic!("port {port}: second connection: {e}"));
                    s.set_read_timeout(Some(TIMEOUT)).unwrap();
                    s.write_all(b"again").unwrap();
                    let mut b = [0u8; 5];
                    s.read_exact(&mut b)
                        .unwrap_or_else(|e| panic!("port {port}: the echo: {e}"));
                    assert_eq!(&b, b"again");
                    let row = wait_encrypted(ca, s.local_addr().unwrap());
                    assert_eq!(row.local.port(), port, "the application's own port");
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    let log = net.log("a");
    assert!(
        log.matches("source port remapped by NAT").count() >= ports.len(),
        "every second connection was remapped (else this test tests nothing)"
    );
    assert!(!log.contains("no pre-connected socket"), "{log}");
}

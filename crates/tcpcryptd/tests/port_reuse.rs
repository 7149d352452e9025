//! End to end (namespaces A and B, as root): an application port reused for another
//! destination, once and for twenty ports at once. The client side takes the application's
//! connection by TPROXY (no NAT), so the accepted socket is the application's own tuple: the
//! daemon finds each upstream by it, and the TIME_WAIT left by the first connection (the
//! daemon's side closes first when the server did) only concerns that first destination. Each
//! connection works, is encrypted, and the control socket shows the application's real port.
//! (With the REDIRECT NAT used before, the second connection shared the first one's post-NAT
//! tuple: NAT remapped its port or it met the listener's TIME_WAIT.)

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

/// Both hosts with their daemons, the echo service on PORT and a 5-byte echo on OTHER; A's
/// control socket, and the daemons (kept alive by the caller).
fn setup() -> (Net, std::path::PathBuf, impl Sized) {
    let net = Net::new();
    net.echo_service();
    net.service(OTHER, |mut c| {
        let mut b = [0u8; 5];
        if c.read_exact(&mut b).is_ok() {
            let _ = c.write_all(&b);
        }
    });
    let (da, ca) = net.daemon(&net.a, "a");
    let (db, _cb) = net.daemon(&net.b, "b");
    (net, ca, (da, db))
}

#[test]
fn a_source_port_reused_for_another_destination_is_encrypted() {
    let (net, ca, _daemons) = setup();
    for (i, port) in [45001u16, 45002].into_iter().enumerate() {
        let mut s = connect_from(&net, port, addr('b', false, PORT)).expect("first connection");
        exchange(&mut s, b"hello");
        wait_encrypted(&ca, s.local_addr().unwrap());
        finish(s);
        // Same port, another destination (the first one's TIME_WAIT lingers at the daemon).
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
    assert!(!net.log("a").contains("no pre-connected socket"));
}

/// Twenty application ports, each first used for PORT and closed, then all reused at once for
/// OTHER: twenty upstreams wait for the same destination at the same time, and each
/// application connection must get its own.
#[test]
fn many_reused_ports_to_one_destination_at_once_are_each_encrypted() {
    let (net, ca, _daemons) = setup();
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
    assert!(!log.contains("no pre-connected socket"), "{log}");
}

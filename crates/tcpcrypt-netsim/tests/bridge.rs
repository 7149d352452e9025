//! The middlebox between two namespaces, as root, with plain TCP (no daemons): the bridge
//! carries ARP/ND and TCP both ways over IPv4 and IPv6, and with loss, reordering, duplication
//! and resegmentation the byte stream still arrives intact, while the counters show the
//! impairments happened. Stripping is checked on real kernel SYNs (the kernel sends no ENO, so
//! the box's ENO edits are covered by the engine tests and the daemon matrix instead).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tcpcrypt_netsim::config::{Config, Impairment};
use tcpcrypt_netsim::middlebox::Middlebox;
use tcpcrypt_netsim::topology::Topology;
use tcpcrypt_sys::caps::Privileges;

fn require_root() {
    let p = Privileges::current().expect("read /proc/self/status");
    assert!(
        p.has_net_admin(),
        "this test needs root (CAP_NET_ADMIN) for network namespaces and AF_PACKET sockets; \
         run it as root: `sudo -E cargo test -p tcpcrypt-netsim` (CI runs as root)"
    );
}

/// Sends `data` from A to B's listener at `dst`; B echoes; returns what A read back.
fn echo_through(t: &Topology, dst: SocketAddr, data: &[u8]) -> Vec<u8> {
    let listener =
        t.b.run(move || TcpListener::bind(SocketAddr::new(dst.ip(), dst.port())).unwrap())
            .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            match c.read(&mut buf).unwrap() {
                0 => break,
                n => c.write_all(&buf[..n]).unwrap(),
            }
        }
        c.shutdown(Shutdown::Write).unwrap();
    });
    let mut s =
        t.a.run(move || TcpStream::connect_timeout(&dst, Duration::from_secs(10)))
            .unwrap()
            .expect("connect through the bridge");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&owned).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read the echo");
    writer.join().unwrap();
    server.join().unwrap();
    got
}

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def0u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn plain_tcp_crosses_the_impaired_bridge_intact_v4_and_v6() {
    require_root();
    let t = Topology::new("netsim-br").expect("build the topology");
    let mb = Middlebox::start(Some(&t.m), &t.m_a, &t.m_b, Config::default()).unwrap();
    let payload = data(1 << 20);
    // A clean bridge first (ARP/ND resolve through it).
    assert_eq!(
        echo_through(&t, "10.77.0.2:7001".parse().unwrap(), &payload),
        payload
    );
    let clean = mb.stats();
    assert!(
        clean.frames_in[0] > 100 && clean.frames_in[1] > 100,
        "{clean:?}"
    );
    assert_eq!(clean.lost, [0, 0]);
    for (i, dst) in ["10.77.0.2:7002", "[fd77::2]:7003"].into_iter().enumerate() {
        mb.set_config(Config {
            seed: 11 + i as u64,
            ..Config::both(
                Impairment::parse("loss=0.02,reorder=0.03,dup=0.02,resegment,delay=1ms").unwrap(),
            )
        });
        assert_eq!(
            echo_through(&t, dst.parse().unwrap(), &payload),
            payload,
            "{dst}: byte stream intact"
        );
        let s = mb.stats();
        for d in 0..2 {
            assert!(s.lost[d] > 0, "{dst}: loss happened: {s:?}");
            assert!(s.duplicated[d] > 0, "{dst}: duplication happened: {s:?}");
            assert!(s.reordered[d] > 0, "{dst}: reordering happened: {s:?}");
        }
        assert!(s.resegmented[0] > 100, "{dst}: resegmented: {s:?}");
    }
    assert_eq!(mb.send_errors(), 0, "every frame fit the link");
    mb.stop().expect("the bridge ran without a socket error");
}

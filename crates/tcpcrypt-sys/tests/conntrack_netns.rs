//! `conntrack::original_tuple` against the kernel, each test in a namespace of its own: the
//! situation the daemon's client side meets (a nat OUTPUT REDIRECT to a local listener, a fixed
//! application source port reused towards a second destination while the first connection's
//! conntrack entry lingers in TIME_WAIT, so NAT remaps the source port) is reproduced, and the
//! lookup by the accepted socket's (local, peer) must give back the application's real port and
//! the original destination; IPv4 and IPv6. A tuple without an entry is NotFound, and a thread
//! without CAP_NET_ADMIN gets PermissionDenied.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tcpcrypt_sys::conntrack::{self, Conntrack, ConntrackError};
use tcpcrypt_sys::rules::{Family, Hook, RuleSet, Table};

const TIMEOUT: Duration = Duration::from_secs(3);

/// The addresses of one family's scenario.
struct Plan {
    family: Family,
    /// The application's address and fixed source port.
    app: SocketAddr,
    /// Two destinations, both redirected to `listen`.
    dst1: SocketAddr,
    dst2: SocketAddr,
    /// The redirect target (REDIRECT in OUTPUT goes to 127.0.0.1 / ::1).
    listen: SocketAddr,
    /// `ip addr add` arguments for the app and destination addresses on lo.
    addrs: [&'static str; 3],
}

/// Connects from `app` (bound with SO_REUSEADDR) to `dst`.
fn connect_from(app: SocketAddr, dst: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::for_address(app), Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket
        .bind(&app.into())
        .unwrap_or_else(|e| panic!("bind {app}: {e}"));
    socket
        .connect_timeout(&dst.into(), TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {app} -> {dst}: {e}"));
    socket.into()
}

fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let (stream, peer) = listener.accept().unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    (stream, peer)
}

fn remapped_port_is_recovered(plan: &Plan) {
    let ns = common::netns();
    ns.run(|| {
        for addr in plan.addrs {
            common::sh(&["ip", "addr", "add", addr, "dev", "lo", "nodad"]);
        }
        let mut set = RuleSet::new("TCC_");
        let chain = set.chain(plan.family, Table::Nat, Hook::Output, "NOUT");
        let port = plan.listen.port().to_string();
        for dst in [plan.dst1, plan.dst2] {
            let ip = dst.ip().to_string();
            chain.rule(&[
                "-p",
                "tcp",
                "-d",
                &ip,
                "-j",
                "REDIRECT",
                "--to-ports",
                &port,
            ]);
        }
        let rules = set.install().unwrap();
        let listener = TcpListener::bind(plan.listen).unwrap();
        let mut ct = Conntrack::open().unwrap();

        // First connection: app:P -> dst1, not remapped.
        let mut client = connect_from(plan.app, plan.dst1);
        let (server, peer1) = accept(&listener);
        assert_eq!(peer1, plan.app, "first connection keeps its port");
        let local = server.local_addr().unwrap();
        assert_eq!(local, plan.listen);
        assert_eq!(
            ct.original_tuple(local, peer1).unwrap(),
            (plan.app, plan.dst1)
        );
        // The listener side closes first: its socket, and the conntrack entry, go to TIME_WAIT.
        drop(server);
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(
            client.read(&mut [0u8; 1]).unwrap(),
            0,
            "EOF from the server"
        );
        drop(client);
        let conntrack_list = common::sh(&["conntrack", "-L", "-p", "tcp"]);
        assert!(
            conntrack_list.contains("TIME_WAIT"),
            "the first connection's entry lingers: {conntrack_list}"
        );
        // Still found in TIME_WAIT.
        assert_eq!(
            conntrack::original_tuple(local, peer1).unwrap(),
            (plan.app, plan.dst1)
        );

        // Second connection from the same port to dst2: its redirected tuple clashes with the
        // TIME_WAIT entry's reply tuple, so NAT remaps the source port.
        let _client2 = connect_from(plan.app, plan.dst2);
        let (server2, peer2) = accept(&listener);
        assert_eq!(peer2.ip(), plan.app.ip());
        assert_ne!(
            peer2.port(),
            plan.app.port(),
            "NAT did not remap the source port: {}",
            common::sh(&["conntrack", "-L", "-p", "tcp"])
        );
        eprintln!(
            "{}: peer {peer2} for {} -> {}",
            plan.listen, plan.app, plan.dst2
        );
        let local2 = server2.local_addr().unwrap();
        assert_eq!(
            ct.original_tuple(local2, peer2).unwrap(),
            (plan.app, plan.dst2),
            "the application's real port and the original destination"
        );
        // The same through a fresh socket per call.
        assert_eq!(
            conntrack::original_tuple(local2, peer2).unwrap(),
            (plan.app, plan.dst2)
        );

        // A connection that was not NATed answers with (peer, local).
        let _direct = TcpStream::connect(plan.listen).unwrap();
        let (server3, peer3) = accept(&listener);
        let local3 = server3.local_addr().unwrap();
        assert_eq!(ct.original_tuple(local3, peer3).unwrap(), (peer3, local3));

        // A reply tuple nobody has.
        let unknown = SocketAddr::new(plan.app.ip(), 9);
        assert!(matches!(
            ct.original_tuple(local2, unknown),
            Err(ConntrackError::NotFound)
        ));
        rules.remove().unwrap();
    })
    .unwrap();
}

#[test]
fn remapped_source_port_is_recovered_v4() {
    remapped_port_is_recovered(&Plan {
        family: Family::V4,
        app: "10.99.0.10:47001".parse().unwrap(),
        dst1: "10.99.0.1:80".parse().unwrap(),
        dst2: "10.99.0.2:80".parse().unwrap(),
        listen: "127.0.0.1:4760".parse().unwrap(),
        addrs: ["10.99.0.10/32", "10.99.0.1/32", "10.99.0.2/32"],
    });
}

#[test]
fn remapped_source_port_is_recovered_v6() {
    remapped_port_is_recovered(&Plan {
        family: Family::V6,
        app: "[fd99::10]:47001".parse().unwrap(),
        dst1: "[fd99::1]:80".parse().unwrap(),
        dst2: "[fd99::2]:80".parse().unwrap(),
        listen: "[::1]:4760".parse().unwrap(),
        addrs: ["fd99::10/128", "fd99::1/128", "fd99::2/128"],
    });
}

#[test]
fn a_tuple_without_an_entry_is_not_found() {
    let ns = common::netns();
    ns.run(|| {
        for (src, dst) in [("127.0.0.1:4760", "127.0.0.1:1"), ("[::1]:4760", "[::1]:1")] {
            let err =
                conntrack::original_tuple(src.parse().unwrap(), dst.parse().unwrap()).unwrap_err();
            assert!(matches!(err, ConntrackError::NotFound), "{err}");
        }
    })
    .unwrap();
}

/// Clears CAP_NET_ADMIN from the calling thread's effective set (capabilities are per thread on
/// Linux, so the rest of the test process keeps it).
fn drop_net_admin_in_this_thread() {
    /// `struct __user_cap_header_struct`.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    /// `struct __user_cap_data_struct`.
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes one header and two data structs (version 3), all owned here.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: capset reads the header and two data structs, all owned here.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn a_thread_without_net_admin_is_refused() {
    let ns = common::netns();
    ns.run(|| {
        drop_net_admin_in_this_thread();
        let err = conntrack::original_tuple(
            "127.0.0.1:4760".parse().unwrap(),
            "127.0.0.1:1".parse().unwrap(),
        )
        .unwrap_err();
        assert!(matches!(err, ConntrackError::PermissionDenied), "{err}");
    })
    .unwrap();
}

//! The BPF option path against the kernel, in a namespace of its own: the sock_ops program
//! writes exactly the options put in its maps into the SYN, the announced listener's SYN-ACK
//! and the active side's non-SYN segments until it receives one (RFC 8547 §4.6), records the
//! passive side's completing ACK option, and leaves every other connection alone. Read back
//! from a tcpdump capture.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use socket2::{Domain, Socket, Type};
use tcpcrypt_proto::wire::packet::TcpIpPacket;
use tcpcrypt_sys::bpf::{state, EnoOptions};

const SYN_OPTION: &[u8] = &[69, 4, 0x00, 0x21];
/// A fresh answer (one TEP, v = 0).
const SYN_ACK_OPTION: &[u8] = &[69, 3, 0x21];

/// tcpdump reports that it listens slightly before its ring sees packets, and reads the last
/// ones slightly after they are delivered: a margin on both sides of the captured exchange.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// The ENO option of a TCP options area, whole.
fn eno(options: &[u8]) -> Option<Vec<u8>> {
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            0 => return None,
            1 => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?).max(2);
                let opt = options.get(i..i + len)?;
                if kind == 69 {
                    return Some(opt.to_vec());
                }
                i += len;
            }
        }
    }
    None
}

/// One connection from `client` to `server` exchanging "ping" and "pong", captured.
struct Segment {
    from_client: bool,
    syn: bool,
    ack: bool,
    payload: usize,
    eno: Option<Vec<u8>>,
}

fn segments(packets: &[Vec<u8>], client: SocketAddr) -> Vec<Segment> {
    packets
        .iter()
        .filter_map(|p| {
            let pkt = TcpIpPacket::new_checked(&p[..]).ok()?;
            let tcp = pkt.tcp();
            Some(Segment {
                from_client: tcp.src_port() == client.port(),
                syn: tcp.syn(),
                ack: tcp.ack(),
                payload: pkt.tcp_payload().len(),
                eno: eno(pkt.tcp_options()),
            })
        })
        .collect()
}

fn connect_from(
    opts: Option<&mut EnoOptions>,
    client: SocketAddr,
    server: SocketAddr,
    ack_eno: bool,
) -> TcpStream {
    let s = Socket::new(Domain::for_address(client), Type::STREAM, None).unwrap();
    s.bind(&client.into()).unwrap();
    if let Some(opts) = opts {
        let cookie = opts.expect_connect(&s, SYN_OPTION, ack_eno).unwrap();
        assert_ne!(cookie, 0);
    }
    s.connect(&server.into()).unwrap();
    s.into()
}

fn ping_pong(client: &mut TcpStream, listener: &TcpListener) -> TcpStream {
    let (mut accepted, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    accepted.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    // One more exchange: the client's segments after it received a non-SYN carry no ENO.
    client.write_all(b"ping").unwrap();
    accepted.read_exact(&mut buf).unwrap();
    accepted
}

/// A listener on `addr`, announced to the program (its SYN-ACKs get options) if `opts`.
fn listener_at(addr: SocketAddr, opts: Option<&mut EnoOptions>) -> TcpListener {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&addr.into()).unwrap();
    if let Some(opts) = opts {
        opts.expect_listen(&s).unwrap();
    }
    s.listen(16).unwrap();
    s.into()
}

/// One connection through an announced listener; its SYN-ACK gets `syn_ack` (none if empty).
fn run(client: SocketAddr, server: SocketAddr, syn_ack: &[u8]) {
    let mut opts = EnoOptions::load().expect("load the BPF option path");
    let listener = listener_at(server, Some(&mut opts));
    opts.expect_passive(server, client, syn_ack).unwrap();
    let filter = format!("tcp port {}", server.port());
    let cap = common::Capture::start("bpf-options", &filter);
    settle();
    let mut c = connect_from(Some(&mut opts), client, server, true);
    let accepted = ping_pong(&mut c, &listener);
    // The passive record: the completing ACK's option, nothing written on that side.
    let rec = opts
        .record(server, client)
        .unwrap()
        .expect("passive record");
    assert_eq!(rec.peer_option, [69, 2]);
    assert_eq!(rec.state, state::ESTABLISHED, "state {:#x}", rec.state);
    assert_eq!(
        rec.peer_flags & 0x12,
        0x10,
        "an ACK without SYN completed it"
    );
    // The active record is gone: a non-SYN segment arrived, the duty is over.
    assert_eq!(opts.record(client, server).unwrap(), None);
    drop((c, accepted));
    settle();
    let segs = segments(&cap.stop(), client);
    let syn = segs.iter().find(|s| s.syn && !s.ack).expect("SYN captured");
    assert_eq!(syn.eno.as_deref(), Some(SYN_OPTION));
    let synack = segs
        .iter()
        .find(|s| s.syn && s.ack)
        .expect("SYN-ACK captured");
    let want = (!syn_ack.is_empty()).then_some(syn_ack);
    assert_eq!(synack.eno.as_deref(), want, "the SYN-ACK's option");
    // The client's segments: `45 02` on the third ACK and the first ping, none after the
    // server's first non-SYN segment; the server never sends ENO.
    let first_server_non_syn = segs
        .iter()
        .position(|s| !s.from_client && !s.syn)
        .expect("a server non-SYN segment");
    for (i, s) in segs.iter().enumerate().filter(|(_, s)| !s.syn) {
        let want: Option<&[u8]> = (s.from_client && i < first_server_non_syn).then_some(&[69, 2]);
        assert_eq!(
            s.eno.as_deref(),
            want,
            "segment {i} (client: {}, payload {})",
            s.from_client,
            s.payload
        );
    }
    assert!(
        segs[..first_server_non_syn]
            .iter()
            .any(|s| s.from_client && s.payload == 4),
        "the first ping left before the server's first non-SYN segment"
    );
    assert!(
        segs[first_server_non_syn..]
            .iter()
            .any(|s| s.from_client && s.payload == 4),
        "the second ping came after it"
    );
}

#[test]
fn writes_the_decided_options_and_records_the_completing_ack_ipv4() {
    common::in_netns(|| {
        run(
            "127.0.0.1:40001".parse().unwrap(),
            "127.0.0.1:40002".parse().unwrap(),
            SYN_ACK_OPTION,
        );
        // A SYN-ACK whose option is written elsewhere (NFQUEUE): none from the program.
        run(
            "127.0.0.1:40003".parse().unwrap(),
            "127.0.0.1:40004".parse().unwrap(),
            &[],
        );
    });
}

#[test]
fn writes_the_decided_options_and_records_the_completing_ack_ipv6() {
    common::in_netns(|| {
        run(
            "[::1]:40001".parse().unwrap(),
            "[::1]:40002".parse().unwrap(),
            SYN_ACK_OPTION,
        );
    });
}

#[test]
fn leaves_other_connections_alone() {
    common::in_netns(|| {
        let mut opts = EnoOptions::load().unwrap();
        let (client, server): (SocketAddr, SocketAddr) = (
            "127.0.0.1:40011".parse().unwrap(),
            "127.0.0.1:40012".parse().unwrap(),
        );
        // A connection the daemon did not announce (a passive entry for another client
        // port): nothing is written, nothing recorded.
        let listener = listener_at(server, Some(&mut opts));
        let other: SocketAddr = "127.0.0.1:40013".parse().unwrap();
        opts.expect_passive(server, other, SYN_ACK_OPTION).unwrap();
        let cap = common::Capture::start("bpf-options-other", "tcp port 40012");
        settle();
        let mut c = connect_from(None, client, server, true);
        let _accepted = ping_pong(&mut c, &listener);
        settle();
        let segs = segments(&cap.stop(), client);
        assert!(segs.len() >= 6, "captured {}", segs.len());
        assert!(
            segs.iter().all(|s| s.eno.is_none()),
            "an ENO option on a foreign connection"
        );
    });
}

#[test]
fn syn_cookies_keep_the_options_and_the_ack_record() {
    common::in_netns(|| {
        // 2: every SYN is answered with a cookie, as under a SYN flood.
        common::sh(&["sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=2"]);
        run(
            "127.0.0.1:40021".parse().unwrap(),
            "127.0.0.1:40022".parse().unwrap(),
            SYN_ACK_OPTION,
        );
    });
}

#[test]
fn a_syn_ack_option_longer_than_the_kernel_leaves_is_refused() {
    common::in_netns(|| {
        let mut opts = EnoOptions::load().unwrap();
        let (server, client): (SocketAddr, SocketAddr) = (
            "127.0.0.1:40031".parse().unwrap(),
            "127.0.0.1:40032".parse().unwrap(),
        );
        // A resumption answer: 21 bytes, one more than the kernel's SYN-ACK options leave.
        let mut resumed = vec![69, 21, 0x21];
        resumed.resize(21, 0xab);
        assert!(matches!(
            opts.expect_passive(server, client, &resumed),
            Err(tcpcrypt_sys::bpf::BpfError::NoRoom(21))
        ));
        assert_eq!(
            opts.record(server, client).unwrap(),
            None,
            "nothing recorded"
        );
        opts.expect_passive(server, client, &resumed[..20]).unwrap();
    });
}

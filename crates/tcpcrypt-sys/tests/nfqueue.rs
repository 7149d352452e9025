//! NFQUEUE end to end, each test in its own namespace over `lo`: SYNs queued by a mangle
//! OUTPUT rule are received here, rewritten with `tcpcrypt_proto::wire::packet` to carry the
//! ENO option, and accepted with the new payload; a capture shows the option and a valid
//! checksum on the wire (checked by our parser and by tcpdump), and the connection completes.
//! Also: a verdict mark seen by a later rule, drop, fail-open with a bounded queue, batches.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tcpcrypt_proto::wire::packet::{
    rewrite_tcp_options, verify_checksums, Flow, IpVersion, TcpIpPacket,
};
use tcpcrypt_proto::wire::tcp_option::{insert_option, TcpOption, TcpOptions};
use tcpcrypt_sys::nfqueue::{Packet, Queue, QueueConfig, Verdict};
use tcpcrypt_sys::rules::{Family, Hook, InstalledRules, RuleSet, Table};

const ENO: &[u8] = &[0x45, 0x03, 0x23];
const WAIT: Duration = Duration::from_secs(5);

/// Queues SYNs to `port` (mangle OUTPUT) into `queue`, plus `extra` filter OUTPUT rules.
fn queue_syns(family: Family, port: u16, queue: u16, extra: &[&[&str]]) -> InstalledRules {
    let mut set = RuleSet::new("TCQ_");
    let port = port.to_string();
    let queue = queue.to_string();
    set.chain(family, Table::Mangle, Hook::Output, "MOUT")
        .rule(&[
            "-p",
            "tcp",
            "--syn",
            "--dport",
            &port,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue,
            "--queue-bypass",
        ]);
    let chain = set.chain(family, Table::Filter, Hook::Output, "FOUT");
    for rule in extra {
        chain.rule(rule);
    }
    set.install().expect("install the test's rules")
}

fn recv_one(queue: &mut Queue) -> Packet {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(p) = queue.recv().unwrap() {
            return p;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero() && queue.wait_readable(Some(left)).unwrap(),
            "no packet queued within {WAIT:?}"
        );
    }
}

/// Connects in a thread; the result arrives on the returned channel.
fn connect_in_background(addr: SocketAddr) -> mpsc::Receiver<std::io::Result<TcpStream>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(TcpStream::connect_timeout(&addr, WAIT));
    });
    rx
}

/// Accepts the client's connection and checks that bytes flow both ways. Connections of other
/// clients accepted meanwhile are kept in `stash` for their own turn.
fn exchange(
    listener: &TcpListener,
    stash: &mut Vec<(TcpStream, SocketAddr)>,
    client: std::io::Result<TcpStream>,
) {
    let mut client = client.expect("the connection completes");
    client.set_read_timeout(Some(WAIT)).unwrap();
    let me = client.local_addr().unwrap();
    let mut server = loop {
        if let Some(i) = stash.iter().position(|(_, peer)| *peer == me) {
            break stash.swap_remove(i).0;
        }
        let (s, peer) = listener.accept().unwrap();
        stash.push((s, peer));
    };
    server.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}

/// tcpdump's own verdict on the checksums of the SYN in `pcap` (-vv prints "(correct)" or
/// "incorrect").
fn tcpdump_checks_syn(pcap: &std::path::Path, family: Family) {
    let out = common::sh(&["tcpdump", "-r", pcap.to_str().unwrap(), "-n", "-vv"]);
    // With -vv an IPv4 packet takes two lines (IP header, then TCP); join each record.
    let mut records: Vec<String> = Vec::new();
    for line in out.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = records.last_mut() {
                last.push_str(line);
            }
        } else {
            records.push(line.to_owned());
        }
    }
    let syn = records
        .iter()
        .find(|r| r.contains("Flags [S]"))
        .unwrap_or_else(|| panic!("no SYN in tcpdump's output:\n{out}"));
    assert!(syn.contains("cksum") && syn.contains("(correct)"), "{syn}");
    assert!(!syn.contains("incorrect"), "{syn}");
    assert!(
        syn.contains("unknown-69 0x23"),
        "tcpdump sees the ENO option: {syn}"
    );
    if family == Family::V4 {
        assert!(syn.contains("length 64"), "SYN grew by 4 bytes: {syn}");
    }
}

fn eno_on_the_wire(family: Family, queue_num: u16) {
    let ns = common::netns();
    ns.run(|| {
        let port = 8080;
        let addr: SocketAddr = match family {
            Family::V4 => ([127, 0, 0, 1], port).into(),
            Family::V6 => (std::net::Ipv6Addr::LOCALHOST, port).into(),
        };
        let mut queue = Queue::open(&QueueConfig::new(queue_num)).unwrap();
        let rules = queue_syns(family, port, queue_num, &[]);
        let capture = common::Capture::start("nfq-eno", "tcp port 8080");
        let listener = TcpListener::bind(addr).unwrap();
        let mut stash = Vec::new();
        let client = connect_in_background(addr);

        let packet = recv_one(&mut queue);
        assert_eq!(packet.hook, 3, "LOCAL_OUT");
        let parsed = TcpIpPacket::new_checked(&packet.payload[..]).unwrap();
        assert_eq!(
            parsed.version(),
            if family == Family::V4 {
                IpVersion::V4
            } else {
                IpVersion::V6
            }
        );
        assert!(parsed.tcp().syn() && !parsed.tcp().ack());
        assert_eq!(parsed.flow().dst, addr);
        assert_eq!(
            verify_checksums(&packet.payload),
            Ok(()),
            "queued fully checksummed"
        );
        let area = insert_option(parsed.tcp_options(), ENO).unwrap();
        let rewritten = rewrite_tcp_options(&packet.payload, area.as_bytes()).unwrap();
        queue
            .verdict(packet.id, Verdict::accept_with_payload(&rewritten))
            .unwrap();
        exchange(&listener, &mut stash, client.recv().unwrap());

        let flow = parsed.flow();
        let pcap = capture.path.clone();
        let is_syn = |p: &Vec<u8>| {
            TcpIpPacket::new_checked(&p[..])
                .is_ok_and(|t| t.tcp().syn() && !t.tcp().ack() && t.flow() == flow)
        };
        let packets = capture.stop_once(|pkts| pkts.iter().any(is_syn));
        let syn = packets
            .iter()
            .find(|p| is_syn(p))
            .expect("the SYN was captured");
        assert_eq!(
            syn, &rewritten,
            "the wire carries exactly the verdict's payload"
        );
        assert_eq!(verify_checksums(syn), Ok(()));
        let on_wire = TcpIpPacket::new_checked(&syn[..]).unwrap();
        assert!(TcpOptions::new(on_wire.tcp_options())
            .any(|o| matches!(o, Ok(TcpOption::Eno(e)) if e.as_bytes() == ENO)));
        tcpdump_checks_syn(&pcap, family);
        std::fs::remove_file(&pcap).unwrap();
        rules.remove().unwrap();
        assert!(Flow::from_packet(syn).is_ok());
    })
    .unwrap();
}

#[test]
fn eno_option_inserted_into_a_queued_syn_v4() {
    eno_on_the_wire(Family::V4, 10);
}

#[test]
fn eno_option_inserted_into_a_queued_syn_v6() {
    eno_on_the_wire(Family::V6, 11);
}

#[test]
fn verdict_mark_is_seen_by_a_later_rule() {
    let ns = common::netns();
    ns.run(|| {
        let addr: SocketAddr = ([127, 0, 0, 1], 8081).into();
        let mut queue = Queue::open(&QueueConfig::new(12)).unwrap();
        let rules = queue_syns(
            Family::V4,
            8081,
            12,
            &[
                &[
                    "-p", "tcp", "--dport", "8081", "-m", "mark", "--mark", "0x4/0x4", "-j",
                    "ACCEPT",
                ],
                &["-p", "tcp", "--syn", "--dport", "8081", "-j", "ACCEPT"],
            ],
        );
        let listener = TcpListener::bind(addr).unwrap();
        let mut stash = Vec::new();
        // First connection: mark 0x4. Second: plain accept.
        for verdict in [Verdict::accept_with_mark(0x4), Verdict::ACCEPT] {
            let client = connect_in_background(addr);
            let packet = recv_one(&mut queue);
            assert_eq!(packet.mark, 0);
            queue.verdict(packet.id, verdict).unwrap();
            exchange(&listener, &mut stash, client.recv().unwrap());
        }
        // Only the SYN carried the verdict's mark (later packets are unmarked).
        assert_eq!(
            common::counters("iptables", "filter", "TCQ_FOUT"),
            vec![1, 1]
        );
        rules.remove().unwrap();
    })
    .unwrap();
}

#[test]
fn drop_verdict_then_the_retransmitted_syn_is_accepted() {
    let ns = common::netns();
    ns.run(|| {
        let addr: SocketAddr = ([127, 0, 0, 1], 8082).into();
        let mut queue = Queue::open(&QueueConfig::new(13)).unwrap();
        let rules = queue_syns(Family::V4, 8082, 13, &[]);
        let listener = TcpListener::bind(addr).unwrap();
        let mut stash = Vec::new();
        let start = Instant::now();
        let client = connect_in_background(addr);
        let first = recv_one(&mut queue);
        queue.verdict(first.id, Verdict::Drop).unwrap();
        let retransmit = recv_one(&mut queue);
        assert_ne!(retransmit.id, first.id);
        assert_eq!(
            Flow::from_packet(&retransmit.payload),
            Flow::from_packet(&first.payload),
            "same connection"
        );
        queue.verdict(retransmit.id, Verdict::ACCEPT).unwrap();
        exchange(&listener, &mut stash, client.recv().unwrap());
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "waited for the retransmit"
        );
        rules.remove().unwrap();
    })
    .unwrap();
}

#[test]
fn full_queue_fails_open_and_batches_are_received() {
    let ns = common::netns();
    ns.run(|| {
        let addr: SocketAddr = ([127, 0, 0, 1], 8083).into();
        let config = QueueConfig {
            max_len: 1,
            ..QueueConfig::new(14)
        };
        let mut queue = Queue::open(&config).unwrap();
        let rules = queue_syns(Family::V4, 8083, 14, &[]);
        let listener = TcpListener::bind(addr).unwrap();
        let mut stash = Vec::new();
        // Hold the first SYN (queue now full), then two more connect without any verdict.
        let held = connect_in_background(addr);
        assert!(queue.wait_readable(Some(WAIT)).unwrap());
        let others: Vec<_> = (0..2).map(|_| connect_in_background(addr)).collect();
        for rx in others {
            let stream = rx
                .recv_timeout(Duration::from_millis(800))
                .expect("fail-open: no wait");
            exchange(&listener, &mut stash, stream);
        }
        let mut batch = Vec::new();
        assert_eq!(
            queue.recv_batch(&mut batch, 16).unwrap(),
            1,
            "only the held SYN"
        );
        queue.verdict(batch[0].id, Verdict::ACCEPT).unwrap();
        exchange(&listener, &mut stash, held.recv().unwrap());

        // A batch of three queued SYNs (normal queue length again).
        drop(queue);
        let mut queue = Queue::open(&QueueConfig::new(14)).unwrap();
        let clients: Vec<_> = (0..3).map(|_| connect_in_background(addr)).collect();
        let mut batch = Vec::new();
        let deadline = Instant::now() + WAIT;
        while batch.len() < 3 && Instant::now() < deadline {
            queue
                .wait_readable(Some(Duration::from_millis(100)))
                .unwrap();
            queue.recv_batch(&mut batch, 16).unwrap();
        }
        assert_eq!(batch.len(), 3);
        for p in &batch {
            queue.verdict(p.id, Verdict::ACCEPT).unwrap();
        }
        for rx in clients {
            exchange(&listener, &mut stash, rx.recv().unwrap());
        }
        assert!(
            queue.recv().unwrap().is_none(),
            "no error came back for the verdicts"
        );
        rules.remove().unwrap();
    })
    .unwrap();
}

#[test]
fn verdict_for_an_unknown_packet_is_reported() {
    let ns = common::netns();
    ns.run(|| {
        let mut queue = Queue::open(&QueueConfig::new(15)).unwrap();
        queue.verdict(0xdead_beef, Verdict::ACCEPT).unwrap();
        assert!(queue.wait_readable(Some(WAIT)).unwrap());
        let err = queue.recv().unwrap_err();
        assert!(err.to_string().contains("verdict rejected"), "{err}");
    })
    .unwrap();
}

/// `Verdict::Repeat` runs the packet through the queueing table again with the new mark: a
/// rule there saves the mark in the connection's conntrack mark, the queue rule (which skips
/// connections so marked) lets the SYN go, and none of the connection's later packets (ACK,
/// data both ways, FIN) is queued. This is how the daemon stops queueing a connection once its
/// ENO negotiation is settled.
#[test]
fn repeat_verdict_saves_the_mark_and_stops_queueing_the_connection() {
    let ns = common::netns();
    ns.run(|| {
        let addr: SocketAddr = ([127, 0, 0, 1], 8084).into();
        let mut queue = Queue::open(&QueueConfig::new(16)).unwrap();
        let mut set = RuleSet::new("TCQ_");
        set.chain(Family::V4, Table::Mangle, Hook::Output, "MOUT")
            .rule(&[
                "-m",
                "mark",
                "--mark",
                "0x80/0x80",
                "-j",
                "CONNMARK",
                "--set-xmark",
                "0x80/0x80",
            ])
            .rule(&[
                "-p",
                "tcp",
                "--dport",
                "8084",
                "-m",
                "connmark",
                "!",
                "--mark",
                "0x80/0x80",
                "-j",
                "NFQUEUE",
                "--queue-num",
                "16",
                "--queue-bypass",
            ]);
        let rules = set.install().expect("install the test's rules");
        let listener = TcpListener::bind(addr).unwrap();
        let mut stash = Vec::new();
        let client = connect_in_background(addr);
        let syn = recv_one(&mut queue);
        let parsed = TcpIpPacket::new_checked(&syn.payload[..]).unwrap();
        assert!(parsed.tcp().syn() && !parsed.tcp().ack());
        queue
            .verdict(
                syn.id,
                Verdict::Repeat {
                    mark: syn.mark | 0x80,
                    payload: None,
                },
            )
            .unwrap();
        exchange(&listener, &mut stash, client.recv().unwrap());
        assert!(
            queue.recv().unwrap().is_none(),
            "no later packet of the connection was queued"
        );
        // The SYN went through the chain twice: queued, then (marked) saved and let go.
        assert_eq!(
            common::counters("iptables", "mangle", "TCQ_MOUT"),
            vec![1, 1]
        );
        rules.remove().unwrap();
    })
    .unwrap();
}

//! AF_PACKET sockets against the kernel, in a namespace of their own: a frame sent on one end
//! of a veth pair arrives whole on the other end, the sender does not receive its own frame,
//! and an unknown interface is a typed error.

mod common;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tcpcrypt_sys::packet_socket::{poll_readable, PacketSocket};

#[test]
fn a_frame_crosses_a_veth_pair_whole_and_is_not_looped_back() {
    let ns = common::netns();
    ns.run(|| {
        common::sh(&[
            "ip", "link", "add", "pkx0", "type", "veth", "peer", "name", "pkx1",
        ]);
        common::sh(&["ip", "link", "set", "pkx0", "up"]);
        common::sh(&["ip", "link", "set", "pkx1", "up"]);
        let tx = PacketSocket::bind("pkx0").unwrap();
        let rx = PacketSocket::bind("pkx1").unwrap();
        assert_ne!(tx.ifindex(), rx.ifindex());
        // A broadcast frame of a private EtherType (IEEE 802 local experimental 0x88b5).
        let mut frame = vec![0xffu8; 6];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
        frame.extend((0..200u32).map(|i| i as u8));
        tx.send(&frame).unwrap();
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = loop {
            let ready = poll_readable(&[rx.as_raw_fd()], Some(Duration::from_millis(100))).unwrap();
            if ready[0] {
                if let Some(n) = rx.recv(&mut buf).unwrap() {
                    if buf[12..14] == [0x88, 0xb5] {
                        break buf[..n].to_vec();
                    }
                }
            }
            assert!(Instant::now() < deadline, "the frame never arrived");
        };
        assert_eq!(got, frame);
        // The sender's socket skips its own outgoing copy.
        while let Some(n) = tx.recv(&mut buf).unwrap() {
            assert_ne!(buf[..n], frame[..], "own frame looped back");
        }
        let e = PacketSocket::bind("nosuchif0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    })
    .unwrap();
}

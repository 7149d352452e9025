//! Raw link-layer sockets (packet(7), `AF_PACKET`/`SOCK_RAW`) bound to one interface: whole
//! Ethernet frames in and out. The test middlebox of `tcpcrypt-netsim` bridges two veths with
//! two of these, so it sees and can rewrite every frame between two hosts.
//!
//! Only frames that arrive on the interface are received (`PACKET_OUTGOING` copies of the
//! socket's own sends are skipped), so a bridge does not loop its own traffic. A frame sent
//! with [`PacketSocket::send`] leaves the interface as it is given (no checksum is filled in:
//! the caller computes them).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `ETH_P_ALL` in network byte order, as `socket(2)` and `sockaddr_ll` want it.
fn eth_p_all_be() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// An `AF_PACKET` raw socket bound to one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

/// The index of interface `name` (`if_nametoindex(3)`) in the calling thread's namespace.
///
/// # Errors
/// `NotFound` if there is no such interface.
pub fn ifindex(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a plain call on a NUL-terminated string that lives across it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}"),
        ))
    } else {
        i32::try_from(index).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }
}

impl PacketSocket {
    /// Opens a raw packet socket for every protocol, bound to interface `name` of the calling
    /// thread's network namespace, non-blocking.
    ///
    /// # Errors
    /// The OS error (EPERM without CAP_NET_RAW, ENODEV/NotFound for an unknown interface).
    pub fn bind(name: &str) -> io::Result<Self> {
        let ifindex = ifindex(name)?;
        // SAFETY: a plain system call; the returned fd is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(eth_p_all_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = sockaddr_ll(ifindex);
        // SAFETY: `addr` is a valid sockaddr_ll that lives across the call; its size is given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = Self { fd, ifindex };
        // A bridge under load needs room: 4 MiB each way (capped by the sysctl maxima unless
        // the FORCE variants are allowed, which they are for root).
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
            let size: libc::c_int = 4 << 20;
            // SAFETY: an int option value that lives across the call; its size is given.
            unsafe {
                libc::setsockopt(
                    socket.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    std::ptr::from_ref(&size).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(socket)
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// Receives the next frame that arrived on the interface into `buf`; returns its length,
    /// or `Ok(None)` if no frame is waiting. Frames the host itself sent out of the interface
    /// are skipped. A frame longer than `buf` is truncated (the caller sizes `buf` for the MTU
    /// plus headers).
    ///
    /// # Errors
    /// The OS error.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: all-zero bytes are a valid sockaddr_ll.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf`, `from` and `len` are valid for writes of the sizes given and
            // live across the call.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::from_mut(&mut from).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            return Ok(Some(n as usize));
        }
    }

    /// Sends one whole Ethernet frame out of the interface.
    ///
    /// # Errors
    /// The OS error; `WouldBlock` when the send buffer is full (the frame is not sent).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let addr = sockaddr_ll(self.ifindex);
        loop {
            // SAFETY: `frame` and `addr` are valid for reads of the sizes given and live
            // across the call.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    std::ptr::from_ref(&addr).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn sockaddr_ll(ifindex: i32) -> libc::sockaddr_ll {
    // SAFETY: all-zero bytes are a valid sockaddr_ll.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = eth_p_all_be();
    addr.sll_ifindex = ifindex;
    addr
}

/// Waits until one of `fds` is readable or `timeout` passes (`poll(2)`); returns, per fd,
/// whether it is readable. `None` waits without a bound.
///
/// # Errors
/// The OS error (EINTR is reported as no fd ready).
pub fn poll_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| {
        // Round up so a sub-millisecond wait does not spin.
        i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs living across the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0)
        .collect())
}

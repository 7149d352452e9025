//! splice(2) through a pipe: moves bytes from one socket to another inside the kernel, without
//! copying them into user space and back. The plain relay (connections that fell back to plain
//! TCP) uses it: socket → [`Pipe`] → socket, two system calls per chunk and no user-space copy.
//!
//! Both ends are non-blocking (`SPLICE_F_NONBLOCK`, and the pipe is `O_NONBLOCK`): a call that
//! would block returns [`io::ErrorKind::WouldBlock`], for the caller's event loop. Filling an
//! empty pipe can only block on the socket, and draining a pipe that holds bytes can only
//! block on the socket, so a `WouldBlock` always means the socket's readiness, never the
//! pipe's, provided the caller fills the pipe only when it is empty.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A pipe used as the kernel-side buffer between two sockets. Its two descriptors are closed
/// when it is dropped (any bytes still in it are discarded).
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe, asked to hold `capacity` bytes (`F_SETPIPE_SZ`;
    /// the kernel rounds up to a power of two pages and caps at `/proc/sys/fs/pipe-max-size`
    /// for an unprivileged process). If the size cannot be set, the pipe keeps the default
    /// (16 pages); [`Pipe::capacity`] says which.
    ///
    /// # Errors
    /// `pipe2` failed (`EMFILE`/`ENFILE`: out of descriptors).
    pub fn new(capacity: usize) -> io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid, writable array of two c_ints, as pipe2 requires.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wanted = libc::c_int::try_from(capacity).unwrap_or(libc::c_int::MAX);
        // SAFETY: fcntl on a descriptor this function owns; F_SETPIPE_SZ takes an int.
        let set = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) };
        // SAFETY: as above; F_GETPIPE_SZ takes no argument.
        let got = if set > 0 {
            set
        } else {
            unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) }
        };
        let capacity = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
        Ok(Self {
            read,
            write,
            capacity,
        })
    }

    /// How many bytes the pipe holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Moves up to `len` bytes from the socket `from` into the pipe; `Ok(0)` is the socket's
    /// end of file.
    ///
    /// # Errors
    /// The OS error of `splice` (`WouldBlock` when the socket has nothing to read).
    pub fn fill_from(&self, from: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(from, self.write.as_fd(), len)
    }

    /// Moves up to `len` bytes from the pipe into the socket `to`.
    ///
    /// # Errors
    /// The OS error of `splice` (`WouldBlock` when the socket's send buffer is full).
    pub fn drain_to(&self, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_fd(), to, len)
    }
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: both descriptors are borrowed, so open for the whole call; null offsets are
    // what splice requires for sockets and pipes.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn moves_bytes_between_sockets_in_order_and_reports_eof() {
        let (mut a_out, a_in) = pair();
        let (b_out, mut b_in) = pair();
        a_in.set_nonblocking(true).unwrap();
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.capacity() >= 64 * 1024, "capacity {}", pipe.capacity());

        // Nothing to read yet: WouldBlock, not 0 (which would mean end of file).
        let e = pipe.fill_from(a_in.as_fd(), 4096).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);

        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sender = {
            let data = data.clone();
            std::thread::spawn(move || {
                a_out.write_all(&data).unwrap();
                // a_out dropped: FIN
            })
        };
        let mut moved = 0;
        loop {
            match pipe.fill_from(a_in.as_fd(), pipe.capacity()) {
                Ok(0) => break,
                Ok(mut n) => {
                    while n > 0 {
                        let k = pipe.drain_to(b_out.as_fd(), n).unwrap();
                        n -= k;
                        moved += k;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("splice: {e}"),
            }
        }
        sender.join().unwrap();
        drop(b_out);
        let mut got = Vec::new();
        b_in.read_to_end(&mut got).unwrap();
        assert_eq!(moved, data.len());
        assert!(got == data, "bytes differ after the splice");
    }

    #[test]
    fn a_reset_socket_is_an_error_not_an_end_of_file() {
        let (a_out, a_in) = pair();
        socket2::SockRef::from(&a_out)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(a_out); // RST
        std::thread::sleep(std::time::Duration::from_millis(50));
        let pipe = Pipe::new(4096).unwrap();
        let e = pipe.fill_from(a_in.as_fd(), 4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{e}");
    }
}

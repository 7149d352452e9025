//! Safe socket options the proxy needs, on anything that is [`AsFd`] (std and tokio sockets
//! alike): SO_MARK, IP_TRANSPARENT / IPV6_TRANSPARENT, SO_LINGER 0 for an abortive close
//! (RST), and TCP_NODELAY.
//!
//! The address family of the socket (SO_DOMAIN) selects the IPv4 or IPv6 variant where the
//! kernel has two. (The daemon's listeners are transparent, TPROXY'd: an accepted socket's
//! `local_addr()` is the connection's original destination, so no SO_ORIGINAL_DST is needed.)

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// A socket option call that failed; each variant names the option.
#[derive(Debug, thiserror::Error)]
pub enum SockoptError {
    /// `setsockopt` failed.
    #[error("setsockopt({option}): {source}")]
    Set {
        /// The option, e.g. "SO_MARK".
        option: &'static str,
        /// The OS error (EPERM without CAP_NET_ADMIN for SO_MARK and *_TRANSPARENT).
        #[source]
        source: io::Error,
    },
    /// `getsockopt` failed.
    #[error("getsockopt({option}): {source}")]
    Get {
        /// The option.
        option: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The option does not exist for the socket's address family.
    #[error("{option}: unsupported address family {family}")]
    UnsupportedFamily {
        /// The option.
        option: &'static str,
        /// The socket's SO_DOMAIN.
        family: libc::c_int,
    },
    /// The kernel returned a value of an unexpected size.
    #[error("getsockopt({option}): unexpected length {len}")]
    BadLength {
        /// The option.
        option: &'static str,
        /// The length the kernel reported.
        len: usize,
    },
}

/// Sets SO_MARK (the packets' skb->mark; needs CAP_NET_ADMIN).
///
/// # Errors
/// [`SockoptError::Set`].
pub fn set_mark(socket: impl AsFd, mark: u32) -> Result<(), SockoptError> {
    set(
        socket.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_MARK,
        &mark,
        "SO_MARK",
    )
}

/// Reads SO_MARK.
///
/// # Errors
/// [`SockoptError::Get`].
pub fn mark(socket: impl AsFd) -> Result<u32, SockoptError> {
    get(socket.as_fd(), libc::SOL_SOCKET, libc::SO_MARK, "SO_MARK")
}

/// Sets IP_TRANSPARENT (IPv4 socket) or IPV6_TRANSPARENT (IPv6 socket): needed by a TPROXY
/// listener and by a socket that binds a foreign address (needs CAP_NET_ADMIN).
///
/// # Errors
/// [`SockoptError::Set`], or [`SockoptError::UnsupportedFamily`] for a non-IP socket.
pub fn set_transparent(socket: impl AsFd, on: bool) -> Result<(), SockoptError> {
    let fd = socket.as_fd();
    let value = libc::c_int::from(on);
    match domain(fd)? {
        libc::AF_INET => set(
            fd,
            libc::SOL_IP,
            libc::IP_TRANSPARENT,
            &value,
            "IP_TRANSPARENT",
        ),
        libc::AF_INET6 => set(
            fd,
            libc::SOL_IPV6,
            libc::IPV6_TRANSPARENT,
            &value,
            "IPV6_TRANSPARENT",
        ),
        family => Err(SockoptError::UnsupportedFamily {
            option: "IP_TRANSPARENT",
            family,
        }),
    }
}

/// Reads IP_TRANSPARENT or IPV6_TRANSPARENT.
///
/// # Errors
/// [`SockoptError::Get`], or [`SockoptError::UnsupportedFamily`] for a non-IP socket.
pub fn transparent(socket: impl AsFd) -> Result<bool, SockoptError> {
    let fd = socket.as_fd();
    let value: libc::c_int = match domain(fd)? {
        libc::AF_INET => get(fd, libc::SOL_IP, libc::IP_TRANSPARENT, "IP_TRANSPARENT")?,
        libc::AF_INET6 => get(
            fd,
            libc::SOL_IPV6,
            libc::IPV6_TRANSPARENT,
            "IPV6_TRANSPARENT",
        )?,
        family => {
            return Err(SockoptError::UnsupportedFamily {
                option: "IP_TRANSPARENT",
                family,
            })
        }
    };
    Ok(value != 0)
}

/// Sets SO_LINGER to {on, 0 s}: closing the socket then sends a RST instead of a FIN (an
/// abortive close), which is how the proxy reports an authentication failure or a peer's reset
/// (RFC 8548 §3.6 wants it distinguishable from a clean end).
///
/// # Errors
/// [`SockoptError::Set`].
pub fn set_linger_zero(socket: impl AsFd) -> Result<(), SockoptError> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set(
        socket.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        &linger,
        "SO_LINGER",
    )
}

/// Reads SO_LINGER: `None` when off, else the linger time.
///
/// # Errors
/// [`SockoptError::Get`].
pub fn linger(socket: impl AsFd) -> Result<Option<Duration>, SockoptError> {
    let l: libc::linger = get(
        socket.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        "SO_LINGER",
    )?;
    Ok((l.l_onoff != 0).then(|| Duration::from_secs(u64::try_from(l.l_linger).unwrap_or(0))))
}

/// Sets TCP_NODELAY.
///
/// # Errors
/// [`SockoptError::Set`].
pub fn set_nodelay(socket: impl AsFd, on: bool) -> Result<(), SockoptError> {
    let value = libc::c_int::from(on);
    set(
        socket.as_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        &value,
        "TCP_NODELAY",
    )
}

/// Reads TCP_NODELAY.
///
/// # Errors
/// [`SockoptError::Get`].
pub fn nodelay(socket: impl AsFd) -> Result<bool, SockoptError> {
    let value: libc::c_int = get(
        socket.as_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        "TCP_NODELAY",
    )?;
    Ok(value != 0)
}

/// The socket's address family (SO_DOMAIN).
fn domain(fd: BorrowedFd<'_>) -> Result<libc::c_int, SockoptError> {
    get(fd, libc::SOL_SOCKET, libc::SO_DOMAIN, "SO_DOMAIN")
}

/// Marker for the plain C structs and integers passed to `setsockopt`/`getsockopt`: every bit
/// pattern is a valid value, so the kernel may fill them.
trait Pod: Copy {}
impl Pod for libc::c_int {}
impl Pod for u32 {}
impl Pod for libc::linger {}
impl Pod for libc::sockaddr_in {}
impl Pod for libc::sockaddr_in6 {}

fn set<T: Pod>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    option: &'static str,
) -> Result<(), SockoptError> {
    // SAFETY: `value` points to a live `T` of exactly `size_of::<T>()` bytes, and the fd is
    // borrowed (open) for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(SockoptError::Set {
            option,
            source: io::Error::last_os_error(),
        })
    }
}

fn get<T: Pod>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    option: &'static str,
) -> Result<T, SockoptError> {
    let mut value = MaybeUninit::<T>::zeroed();
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which has room for them, and
    // updates `len`; the fd is borrowed (open) for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(SockoptError::Get {
            option,
            source: io::Error::last_os_error(),
        });
    }
    if len as usize != size_of::<T>() {
        return Err(SockoptError::BadLength {
            option,
            len: len as usize,
        });
    }
    // SAFETY: zero-initialised and then (fully, as `len` shows) written by the kernel; `T: Pod`
    // accepts any bit pattern.
    Ok(unsafe { value.assume_init() })
}

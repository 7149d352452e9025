//! `libtcpcrypt`: the session-ID API of tcpcryptd for C programs (RFC 8547 §5.1).
//!
//! Builds `libtcpcrypt.so` and `libtcpcrypt.a`; the declarations are in `include/tcpcrypt.h`,
//! which documents each function for C callers. Every function is a thin shell around
//! [`tcpcrypt_control::session_id_at`]: it reads the socket's 4-tuple, asks the daemon over its
//! control socket, and turns the result into the C convention of the original tcpcrypt library
//! (0 or a value on success, -1 and `errno` on failure).
//!
//! | errno          | meaning                                                                |
//! |----------------|------------------------------------------------------------------------|
//! | `ENOTCONN`     | the socket is not connected                                            |
//! | `ENOBUFS`      | the buffer is too small; `*len` is set to the size needed (33)         |
//! | `ENOENT`       | the connection is not encrypted (plain-TCP fallback) or not known      |
//! | `EAGAIN`       | the tcpcrypt handshake has not finished yet                            |
//! | `ECONNREFUSED` | tcpcryptd cannot be reached (no control socket)                        |
//! | `EACCES`       | the control socket exists but this process may not open it             |
//! | `ETIMEDOUT`    | tcpcryptd did not answer in time                                       |
//! | `EPROTO`       | tcpcryptd answered something unexpected                                |
//! | `EINVAL`       | a NULL `len`, an empty control path, or `fd` is not a TCP socket       |
//! | `EBADF`, `ENOTSOCK` | as from getsockname(2)                                            |
//!
//! `unsafe` is confined to the FFI boundary: reading C pointers and borrowing the caller's fd.
//! No panic crosses it: each entry point runs under `catch_unwind` and reports `EIO` instead.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::ffi::{c_char, c_int, CStr, OsStr};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use tcpcrypt_control::{ControlError, SessionIdError, SessionIdReply};
use tcpcrypt_proto::Role;

/// Length of a session ID in bytes (RFC 8548 §3.4); `TCPCRYPT_SESSID_MAX` in the header.
pub const TCPCRYPT_SESSID_MAX: usize = tcpcrypt_proto::consts::SESSION_ID_LEN;

/// The control socket chosen with [`tcpcrypt_set_control_path`]; `None` means the default.
static CONTROL_PATH: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Writes the session ID of the connected TCP socket `fd` to `buf` and its length to `*len`.
///
/// On entry `*len` is the size of `buf`. Returns 0 on success, else -1 with `errno` set (see the
/// crate docs); with `ENOBUFS`, `*len` is set to [`TCPCRYPT_SESSID_MAX`] and `buf` is untouched.
///
/// # Safety
/// `len` must be NULL or point to a writable `size_t`; `buf` must be NULL or point to `*len`
/// writable bytes; `fd` must stay open for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tcpcrypt_getsessid(fd: c_int, buf: *mut u8, len: *mut usize) -> c_int {
    guard(|| {
        if len.is_null() {
            return Err(libc::EINVAL);
        }
        // SAFETY: `len` is not NULL and, by the caller's contract, points to a writable size_t.
        let len = unsafe { &mut *len };
        if buf.is_null() || *len < TCPCRYPT_SESSID_MAX {
            *len = TCPCRYPT_SESSID_MAX;
            return Err(libc::ENOBUFS);
        }
        let reply = query(fd)?;
        // SAFETY: `buf` is not NULL and, by the caller's contract, points to `*len` writable
        // bytes, and `*len >= TCPCRYPT_SESSID_MAX` was checked above.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, TCPCRYPT_SESSID_MAX) };
        out.copy_from_slice(reply.session_id.as_bytes());
        *len = TCPCRYPT_SESSID_MAX;
        Ok(0)
    })
}

/// Returns this host's ENO role on the connected TCP socket `fd`: `'A'` or `'B'`
/// (RFC 8547 §4.3), or -1 with `errno` set as for [`tcpcrypt_getsessid`].
///
/// # Safety
/// `fd` must stay open for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tcpcrypt_getrole(fd: c_int) -> c_int {
    guard(|| {
        Ok(match query(fd)?.role {
            Role::A => c_int::from(b'A'),
            Role::B => c_int::from(b'B'),
        })
    })
}

/// Chooses the control socket of the daemon to ask; NULL restores the default
/// (`$TCPCRYPT_CONTROL`, else `/run/tcpcryptd.sock`). Returns 0, or -1 with `errno` `EINVAL`
/// for an empty path. The setting is process-wide.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string, readable for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tcpcrypt_set_control_path(path: *const c_char) -> c_int {
    guard(|| {
        let chosen = if path.is_null() {
            None
        } else {
            // SAFETY: `path` is not NULL and, by the caller's contract, NUL-terminated.
            let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
            if bytes.is_empty() {
                return Err(libc::EINVAL);
            }
            Some(PathBuf::from(OsStr::from_bytes(bytes)))
        };
        *CONTROL_PATH.lock().unwrap_or_else(PoisonError::into_inner) = chosen;
        Ok(0)
    })
}

/// A static, NUL-terminated description of `err` as returned by the functions above, in
/// tcpcrypt's terms (e.g. `ENOENT`: "connection is not encrypted by tcpcrypt, or unknown to
/// tcpcryptd"). Never NULL; the caller must not free it.
#[no_mangle]
pub extern "C" fn tcpcrypt_strerror(err: c_int) -> *const c_char {
    describe(err).as_ptr()
}

fn describe(err: c_int) -> &'static CStr {
    match err {
        0 => c"success",
        libc::ENOTCONN => c"socket is not connected",
        libc::ENOBUFS => c"buffer too small for the session ID",
        libc::ENOENT => c"connection is not encrypted by tcpcrypt, or unknown to tcpcryptd",
        libc::EAGAIN => c"tcpcrypt handshake not finished yet",
        libc::ECONNREFUSED => c"tcpcryptd is not running (no control socket)",
        libc::EACCES => c"no permission to open tcpcryptd's control socket",
        libc::ETIMEDOUT => c"tcpcryptd did not answer in time",
        libc::EPROTO => c"unexpected answer from tcpcryptd",
        libc::EINVAL => c"invalid argument, or not a TCP socket",
        libc::EBADF => c"bad file descriptor",
        libc::ENOTSOCK => c"not a socket",
        libc::EIO => c"internal error in libtcpcrypt",
        _ => c"unknown error",
    }
}

/// Runs an entry point: `Ok(v)` returns `v`, `Err(e)` sets errno to `e` and returns -1, and a
/// panic is caught and reported as `EIO` instead of unwinding into C.
fn guard(f: impl FnOnce() -> Result<c_int, c_int>) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(libc::EIO));
    match result {
        Ok(v) => v,
        Err(e) => {
            errno::set_errno(errno::Errno(e));
            -1
        }
    }
}

/// Asks the daemon for the session of `fd`, as an errno on failure.
fn query(fd: c_int) -> Result<SessionIdReply, c_int> {
    if fd < 0 {
        return Err(libc::EBADF);
    }
    // SAFETY: `fd` is non-negative and, by the C caller's contract, open for the duration of
    // this call; the borrow does not outlive it. A closed fd makes getsockname fail with EBADF.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let path = CONTROL_PATH
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(tcpcrypt_control::default_path);
    tcpcrypt_control::session_id_at(path, &fd).map_err(|e| errno_of(&e))
}

/// The errno for each reason no session ID can be returned (table in the crate docs).
fn errno_of(err: &SessionIdError) -> c_int {
    match err {
        SessionIdError::NotConnected => libc::ENOTCONN,
        SessionIdError::NotTcp => libc::EINVAL,
        SessionIdError::Socket(e) => e.raw_os_error().unwrap_or(libc::EIO),
        SessionIdError::NotEncrypted { .. } | SessionIdError::NotFound { .. } => libc::ENOENT,
        SessionIdError::Pending => libc::EAGAIN,
        SessionIdError::Control(e) => match e {
            ControlError::NoSocket { .. } | ControlError::Connect { .. } => libc::ECONNREFUSED,
            ControlError::PermissionDenied { .. } => libc::EACCES,
            ControlError::Timeout { .. } => libc::ETIMEDOUT,
            ControlError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
            _ => libc::EPROTO,
        },
        _ => libc::EPROTO,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use tcpcrypt_control::ErrorCode;

    use super::*;

    #[test]
    fn errno_mapping() {
        let cases: Vec<(SessionIdError, c_int)> = vec![
            (SessionIdError::NotConnected, libc::ENOTCONN),
            (SessionIdError::NotTcp, libc::EINVAL),
            (
                SessionIdError::Socket(io::Error::from_raw_os_error(libc::ENOTSOCK)),
                libc::ENOTSOCK,
            ),
            (
                SessionIdError::NotEncrypted { reason: "x".into() },
                libc::ENOENT,
            ),
            (
                SessionIdError::NotFound {
                    local: "127.0.0.1:1".parse().unwrap(),
                    remote: "127.0.0.1:2".parse().unwrap(),
                },
                libc::ENOENT,
            ),
            (SessionIdError::Pending, libc::EAGAIN),
            (
                ControlError::NoSocket {
                    path: PathBuf::from("/x"),
                }
                .into(),
                libc::ECONNREFUSED,
            ),
            (
                ControlError::PermissionDenied {
                    path: PathBuf::from("/x"),
                }
                .into(),
                libc::EACCES,
            ),
            (
                ControlError::Timeout {
                    timeout: std::time::Duration::from_secs(1),
                }
                .into(),
                libc::ETIMEDOUT,
            ),
            (ControlError::Closed.into(), libc::EPROTO),
            (
                ControlError::MalformedReply("x".into()).into(),
                libc::EPROTO,
            ),
            (
                SessionIdError::Daemon {
                    code: ErrorCode::BadRequest,
                    message: "x".into(),
                },
                libc::EPROTO,
            ),
        ];
        for (err, errno) in cases {
            assert_eq!(errno_of(&err), errno, "{err}");
            assert_ne!(describe(errno).to_bytes(), b"unknown error", "{err}");
        }
    }

    #[test]
    fn guard_turns_panics_into_eio() {
        assert_eq!(guard(|| Ok(7)), 7);
        assert_eq!(guard(|| Err(libc::EAGAIN)), -1);
        assert_eq!(errno::errno().0, libc::EAGAIN);
        assert_eq!(guard(|| panic!("boom")), -1);
        assert_eq!(errno::errno().0, libc::EIO);
    }

    #[test]
    fn strerror_is_never_null() {
        for err in [0, libc::ENOENT, 12345, -1] {
            assert!(!tcpcrypt_strerror(err).is_null());
        }
    }
}

//! The open-file limit (RLIMIT_NOFILE, getrlimit(2)): every proxied connection holds two
//! sockets, so the daemon raises its soft limit to the hard limit at start-up; the common soft
//! default of 1024 would otherwise cap it near 500 connections.

use std::io;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the (soft, hard) limits now in
/// force. Nothing changes when the soft limit already equals the hard one.
///
/// # Errors
/// The OS error of getrlimit/setrlimit.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into memory we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads one `rlimit` from memory we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        let (soft, hard) = super::raise_nofile_limit().unwrap();
        assert_eq!(soft, hard);
        assert_eq!(super::raise_nofile_limit().unwrap(), (soft, hard));
    }
}

//! The load client's measurements, each over plain blocking sockets to a [`crate::server`]:
//! bulk streams, connection rate, sequential connection latency, 100-byte echo round trips, and
//! many idle connections held open. Every socket has timeouts, so a broken path ends a run with
//! an error instead of hanging it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::protocol::{IDLE_ACK, MESSAGE_LEN, MODE_BULK, MODE_ECHO, MODE_IDLE, MODE_REQUEST};

/// How long one connect or read may take before the run is declared broken.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// When a bulk run stops.
#[derive(Clone, Copy, Debug)]
pub enum Amount {
    /// After this long.
    Seconds(f64),
    /// After this many bytes in all (split evenly between the streams).
    Bytes(u64),
}

/// What a bulk run moved.
#[derive(Clone, Copy, Debug)]
pub struct BulkResult {
    /// Bytes the server counted (all streams).
    pub bytes: u64,
    /// From the first connect to the last stream's count arriving.
    pub elapsed: Duration,
}

/// `streams` parallel connections stream data to the server; the result counts only what the
/// server confirmed receiving.
///
/// # Errors
/// A stream failed, or the server counted a different number of bytes than were sent.
pub fn bulk(target: SocketAddr, streams: usize, amount: Amount) -> anyhow::Result<BulkResult> {
    let streams = streams.max(1);
    let barrier = Arc::new(Barrier::new(streams + 1));
    let mut handles = Vec::new();
    for _ in 0..streams {
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || -> anyhow::Result<u64> {
            let s = connect(target);
            barrier.wait();
            let mut s = s.context("connect")?;
            let per_stream = match amount {
                Amount::Bytes(b) => Some(b / streams as u64),
                Amount::Seconds(_) => None,
            };
            let deadline = match amount {
                Amount::Seconds(secs) => Some(Instant::now() + Duration::from_secs_f64(secs)),
                Amount::Bytes(_) => None,
            };
            let chunk = vec![0xa5u8; 128 * 1024];
            s.write_all(&[MODE_BULK])?;
            let mut sent: u64 = 0;
            loop {
                let n = match per_stream {
                    Some(limit) if sent >= limit => break,
                    Some(limit) => chunk.len().min((limit - sent) as usize),
                    None => chunk.len(),
                };
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                s.write_all(&chunk[..n])?;
                sent += n as u64;
            }
            s.shutdown(Shutdown::Write)?;
            let mut count = [0u8; 8];
            s.read_exact(&mut count).context("server's byte count")?;
            let counted = u64::from_be_bytes(count);
            if counted != sent {
                bail!("sent {sent} bytes, server counted {counted}");
            }
            Ok(counted)
        }));
    }
    barrier.wait();
    let start = Instant::now();
    let mut bytes = 0;
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => bytes += n,
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(_) => first_err = first_err.or(Some(anyhow::anyhow!("stream thread panicked"))),
        }
    }
    let elapsed = start.elapsed();
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(BulkResult { bytes, elapsed })
}

/// One request/response connection: connect, send [`MESSAGE_LEN`] bytes, read the
/// [`MESSAGE_LEN`]-byte response up to the server's close, close.
///
/// # Errors
/// Connect or I/O failed, or the response had the wrong length.
pub fn request_once(target: SocketAddr) -> anyhow::Result<()> {
    let mut s = connect(target)?;
    s.set_nodelay(true)?;
    let mut req = [b'q'; MESSAGE_LEN];
    req[0] = MODE_REQUEST;
    s.write_all(&req)?;
    let mut resp = [0u8; MESSAGE_LEN + 1];
    let mut got = 0;
    loop {
        let n = s.read(&mut resp[got..])?;
        if n == 0 {
            break;
        }
        got += n;
        if got > MESSAGE_LEN {
            bail!("response longer than {MESSAGE_LEN} bytes");
        }
    }
    if got != MESSAGE_LEN {
        bail!("response of {got} bytes, expected {MESSAGE_LEN}");
    }
    Ok(())
}

/// What a connection-rate run did.
#[derive(Clone, Copy, Debug)]
pub struct RateResult {
    /// Completed request/response connections.
    pub conns: u64,
    /// Failed ones.
    pub errors: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

/// `concurrency` threads each open request/response connections back to back for `seconds`.
pub fn rate(target: SocketAddr, concurrency: usize, seconds: f64) -> RateResult {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match request_once(target) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    RateResult {
        conns: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// `count` sequential request/response connections after `warmup` unmeasured ones: the
/// duration of each that succeeded, connect to close, and how many failed (a failed one is
/// not timed; the next one is tried).
///
/// # Errors
/// None of them succeeded.
pub fn latency(
    target: SocketAddr,
    count: usize,
    warmup: usize,
) -> anyhow::Result<(Vec<Duration>, u64)> {
    for _ in 0..warmup {
        let _ = request_once(target);
    }
    let mut times = Vec::with_capacity(count);
    let mut errors = 0;
    let mut last_err = None;
    for _ in 0..count {
        let start = Instant::now();
        match request_once(target) {
            Ok(()) => times.push(start.elapsed()),
            Err(e) => {
                errors += 1;
                last_err = Some(e);
            }
        }
    }
    match last_err {
        Some(e) if times.is_empty() => Err(e.context("every connection failed")),
        _ => Ok((times, errors)),
    }
}

/// One connection, `count` round trips of a [`MESSAGE_LEN`]-byte message echoed back; the
/// duration of each round trip.
///
/// # Errors
/// I/O failed or the echo differed.
pub fn echo(target: SocketAddr, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut s = connect(target)?;
    s.set_nodelay(true)?;
    s.write_all(&[MODE_ECHO])?;
    let mut times = Vec::with_capacity(count);
    let mut back = [0u8; MESSAGE_LEN];
    for i in 0..count {
        let msg = [(i % 251) as u8; MESSAGE_LEN];
        let start = Instant::now();
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        times.push(start.elapsed());
        if back != msg {
            bail!("echo {i} differs from what was sent");
        }
    }
    s.shutdown(Shutdown::Write)?;
    let mut rest = [0u8; 1];
    if s.read(&mut rest)? != 0 {
        bail!("bytes after the last echo");
    }
    Ok(times)
}

/// Opens `count` idle connections, each confirmed end to end by the server's one-byte answer.
/// A connection that fails is counted and another is tried, up to `count / 10` failures.
///
/// # Errors
/// More than `count / 10` connections failed (e.g. out of file descriptors); the last error.
pub fn idle(target: SocketAddr, count: usize) -> anyhow::Result<(Vec<TcpStream>, u64)> {
    let open_one = |i: usize| -> anyhow::Result<TcpStream> {
        let mut s = connect(target).with_context(|| format!("idle connection {i}"))?;
        s.write_all(&[MODE_IDLE])?;
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack)
            .with_context(|| format!("idle connection {i}: server's answer"))?;
        if ack[0] != IDLE_ACK {
            bail!("idle connection {i}: unexpected answer {:#04x}", ack[0]);
        }
        Ok(s)
    };
    let mut open = Vec::with_capacity(count);
    let mut errors = 0u64;
    while open.len() < count {
        match open_one(open.len()) {
            Ok(s) => open.push(s),
            Err(e) if errors as usize >= count / 10 => {
                return Err(e.context(format!("{errors} connections had failed before")))
            }
            Err(_) => errors += 1,
        }
    }
    Ok((open, errors))
}

/// Runs `f` up to `attempts` times until it succeeds: the result and how many attempts failed.
///
/// # Errors
/// Every attempt failed: the last error.
pub fn retry<T>(
    attempts: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(T, u64)> {
    let mut failed = 0;
    loop {
        match f() {
            Ok(x) => return Ok((x, failed)),
            Err(e) if failed + 1 >= attempts as u64 => {
                return Err(e.context(format!("{attempts} attempts failed")))
            }
            Err(_) => failed += 1,
        }
    }
}

//! The key log file behind `--keylog FILE` / `TCPCRYPT_KEYLOGFILE` (RFC 8547 §5 debug mode):
//! one line per encrypted connection, in the format of [`tcpcrypt_proto::keylog`], appended as
//! soon as the connection's keys exist.
//!
//! The file is opened `O_APPEND | O_CREAT` with mode 0600. An existing regular file that group or
//! others may access is refused rather than used (the daemon never widens and never silently
//! narrows someone else's permissions): whoever can read the file can decrypt every connection
//! it names. Each line goes out in one `write(2)` under a lock, so concurrent connections never
//! interleave. A failed write is reported once as a warning and the connection goes on: the
//! key log is a debugging aid and never decides whether a connection works.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tcpcrypt_proto::keylog::{KeyLog, KeyLogEntry};
use tracing::warn;

/// Permission bits a key log may have: owner read/write only.
const MODE: u32 = 0o600;

/// Why the key log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyLogOpenError {
    /// The OS refused (missing directory, read-only file system, ...).
    #[error("open key log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file exists and group or others may access it.
    #[error(
        "key log {path} has mode {mode:03o}: group/others could read the session secrets; \
         chmod 600 it or choose a new file"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// An append-only key log file.
#[derive(Debug)]
pub struct FileKeyLog {
    path: PathBuf,
    file: Mutex<File>,
    /// A write already failed (warned once).
    failed: AtomicBool,
}

impl FileKeyLog {
    /// Opens (creating with mode 0600) `path` for appending and writes a comment line saying
    /// which daemon started logging.
    ///
    /// # Errors
    /// [`KeyLogOpenError`]: the file cannot be opened or created, or an existing regular file
    /// is accessible to group or others.
    pub fn open(path: &Path) -> Result<Self, KeyLogOpenError> {
        let open_err = |source| KeyLogOpenError::Open {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(MODE)
            .open(path)
            .map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        let mode = meta.mode() & 0o777;
        if meta.file_type().is_file() && mode & 0o077 != 0 {
            return Err(KeyLogOpenError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let header = format!(
            "# tcpcryptd {} (pid {}) key log: TCPCRYPT_ES/TCPCRYPT_SS <session_id> <secret>\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
        file.write_all(header.as_bytes()).map_err(open_err)?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
            failed: AtomicBool::new(false),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyLog for FileKeyLog {
    fn log(&self, entry: &KeyLogEntry<'_>) {
        let line = entry.to_line();
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // One write(2) of the whole line (it is far below any partial-write threshold of a
        // regular file); the loop only covers the pathological short write.
        if let Err(e) = (&*file).write_all(line.as_bytes()) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                warn!(
                    "key log {}: {e} (further errors not reported)",
                    self.path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tcpcrypt_proto::keylog::{KeyLogFile, LoggedSecret};
    use tcpcrypt_proto::SessionId;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tcpcryptd-keylog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn creates_0600_appends_lines_and_parses_back() {
        let dir = temp_dir("create");
        let path = dir.join("keys.log");
        let log = FileKeyLog::open(&path).expect("open");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let sid = SessionId::from_bytes([0x21; 33]);
        log.log(&KeyLogEntry::SharedSecret {
            session_id: &sid,
            es: &[0xab; 32],
        });
        drop(log);
        // A second daemon appends; nothing is truncated.
        let log = FileKeyLog::open(&path).expect("reopen");
        let sid2 = SessionId::from_bytes([0xa1; 33]);
        log.log(&KeyLogEntry::SessionSecret {
            session_id: &sid2,
            ss: &[0xcd; 32],
        });
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 2);
        let parsed = KeyLogFile::parse(&text).expect("valid");
        assert_eq!(parsed.get(&sid), Some(&LoggedSecret::Es(vec![0xab; 32])));
        assert_eq!(parsed.get(&sid2), Some(&LoggedSecret::Ss([0xcd; 32])));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_readable_file_and_leaves_its_mode() {
        let dir = temp_dir("perm");
        let path = dir.join("keys.log");
        std::fs::write(&path, "").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = FileKeyLog::open(&path).expect_err("must refuse");
        assert!(
            matches!(err, KeyLogOpenError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
        let missing = dir.join("no/such/dir/keys.log");
        assert!(matches!(
            FileKeyLog::open(&missing),
            Err(KeyLogOpenError::Open { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

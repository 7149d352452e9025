//! `--dump DIR`: each connection's recovered application bytes, one file per direction.
//!
//! File names: `conn<N>.client_to_server.bin` and `conn<N>.server_to_client.bin`, where `N` is
//! the connection's number in the text report (`#N`, the JSON array index plus one), written
//! with at least three digits (`conn001`). A direction gets a file only when its bytes were
//! recovered: decrypted with keys (tcpcrypt; up to the first frame that fails to verify), or
//! the TCP payload itself (plain and fallback connections).

use std::io;
use std::path::{Path, PathBuf};

use crate::Inspection;

/// Writes the files into `dir` (created if missing) and returns their paths.
///
/// # Errors
/// Any I/O error creating the directory or a file.
pub fn write(inspection: &Inspection, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (i, conn) in inspection.connections.iter().enumerate() {
        for (data, dir_name) in [
            (&conn.plaintext.client_to_server, "client_to_server"),
            (&conn.plaintext.server_to_client, "server_to_client"),
        ] {
            if let Some(data) = data {
                let path = dir.join(file_name(i + 1, dir_name));
                std::fs::write(&path, data)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// The file name of connection `n` (1-based) in `direction`.
pub fn file_name(n: usize, direction: &str) -> String {
    format!("conn{n:03}.{direction}.bin")
}

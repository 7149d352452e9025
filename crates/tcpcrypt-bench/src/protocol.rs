//! The load tool's wire protocol between client and server: the client's first byte names what
//! the connection is for, the rest is fixed per mode. The same server answers every mode, so one
//! listening port serves plain TCP, tcpcrypt, stunnel and wireguard-go alike.

/// Bulk: the client streams bytes, half-closes, and the server answers with the count it read
/// (8 bytes, big-endian), then closes.
pub const MODE_BULK: u8 = b'B';
/// Request/response: the client sends [`MESSAGE_LEN`] bytes (this byte first), the server
/// answers [`MESSAGE_LEN`] bytes and closes first (like an HTTP server with keep-alive off).
pub const MODE_REQUEST: u8 = b'R';
/// Echo: every byte after this one is sent back until the client half-closes.
pub const MODE_ECHO: u8 = b'E';
/// Idle: the server answers one byte (so the client knows the whole path is up), then reads
/// until the client closes.
pub const MODE_IDLE: u8 = b'I';

/// Size of a request, a response and an echo message.
pub const MESSAGE_LEN: usize = 100;

/// The byte the server sends back on an idle connection.
pub const IDLE_ACK: u8 = b'k';

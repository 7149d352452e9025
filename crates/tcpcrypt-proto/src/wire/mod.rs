//! Wire formats: byte views and their parsed representations, with no policy.
//!
//! The panic contract (after smoltcp's `wire`): every `parse` is total and returns a
//! [`DecodeError`](crate::error::DecodeError) naming the field on bad input, never panicking;
//! every `emit` writes exactly `buffer_len()` bytes into a buffer of at least that size. Field
//! offsets live only in each file's private `field` module.

pub mod eno;
pub mod frame;
pub mod init;
pub mod packet;
pub mod tcp_option;

//! Shared helpers for the cross-crate tests: the in-memory pair harness.

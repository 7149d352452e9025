//! Giving freed heap memory back to the kernel (glibc `malloc_trim(3)`): the daemon frees the
//! buffers of idle connections, but glibc keeps freed pages mapped in its arenas unless asked;
//! trimming makes the daemon's resident memory follow its live connections again.

/// Returns free memory at the top of every glibc arena and free whole pages inside them to
/// the kernel. Returns true if any memory was released. Costs a walk of the arenas' free
/// lists: call it after freeing much memory, not per allocation.
#[must_use = "whether anything was released"]
pub fn trim() -> bool {
    // SAFETY: malloc_trim takes a plain integer and only rearranges the allocator's own state.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(test)]
mod tests {
    /// Resident memory of this process, in KiB.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn freed_small_blocks_go_back_to_the_kernel() {
        // Many blocks below the mmap threshold, touched, then freed but the last: glibc keeps
        // the freed pages (the last block pins the heap top) until trimmed.
        let mut blocks: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 60 * 1024]).collect();
        let keep = blocks.pop().unwrap();
        let before = rss_kib();
        drop(blocks);
        let _ = super::trim();
        let after = rss_kib();
        assert!(
            after + 50_000 < before,
            "at least 50 MB of the 117 MB freed was given back: {before} → {after} KiB"
        );
        assert_eq!(keep[0], (1999 % 256) as u8);
    }
}

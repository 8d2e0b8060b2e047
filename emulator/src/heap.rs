//! How many heap bytes the emulator's process has in use, for leak checks under load.

/// Bytes allocated and not yet freed, where the C library can say (glibc's `mallinfo2`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn in_use() -> Option<u64> {
    // SAFETY: mallinfo2 takes no arguments, only reads the allocator's counters under its own
    // locks and returns a plain struct by value (glibc 2.33 and later).
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    // uordblks: bytes in use in the arenas; hblkhd: bytes in blocks mmapped on their own.
    u64::try_from(info.uordblks.saturating_add(info.hblkhd)).ok()
}

/// Elsewhere nothing is measured, and callers that need the figure must say so.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn in_use() -> Option<u64> {
    None
}

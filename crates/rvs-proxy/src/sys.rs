//! The one C library call the proxy makes that no crate wraps: `malloc_trim(3)`.
//!
//! Why by hand: after a flood of connections closes, glibc keeps the freed per-connection
//! buffers in its arenas (a slowloris flood once left 234 MB resident with no connection
//! open); `malloc_trim` hands the free pages back to the kernel. No allocator crate is
//! worth swapping the global allocator for this one call.

#![allow(unsafe_code)]

/// Returns the allocator's free memory to the kernel (glibc; a no-op elsewhere).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages the allocator owns; it reads or writes
    // no memory of ours, takes no pointer, and is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

//! The allocator's one call that is not Rust's: handing free pages back to the kernel.
//! The only `unsafe` in the crate (see `lib.rs`).

/// Asks glibc's malloc to return the whole free pages of every arena to the kernel
/// (`malloc_trim(0)`: since glibc 2.8 it does so below live allocations too, with
/// `madvise`, not only at the top of a heap). Elsewhere (musl, other systems) a no-op.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim takes no pointer and touches only the allocator's own state,
    // under the allocator's own locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

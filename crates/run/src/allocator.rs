//! The C allocator's settings for CPU training.
//!
//! Flex allocates every activation and gradient afresh. glibc's `malloc` serves blocks above
//! its mmap threshold (128 KiB, adapting up to 32 MiB) with a fresh `mmap` and returns them on
//! `free`, and trims the heap top above 128 KiB; a training step then spends 5–20 % of its
//! time in the kernel zeroing pages it has just given back (`clear_page_erms`,
//! `exc_page_fault` under `perf`). Raising both thresholds keeps freed blocks in the heap for
//! the next step, which is what PyTorch's CPU caching allocator achieves on its side.
//! Measured with `cargo xtask bench step` / `bench losses` (see the README's speed table).

/// Largest block glibc serves from its heap: `M_MMAP_THRESHOLD`'s maximum on 64-bit.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory the heap keeps at its top before giving it back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Keeps freed blocks up to 32 MiB (and up to 1 GiB of free heap) in the process instead of
/// returning them to the kernel; once per process, a no-op off glibc or with
/// `KINDLING_MALLOC_DEFAULTS=1`. Called by [`init_device`](crate::init_device) for Flex.
///
/// ```
/// kindling_run::keep_freed_memory();
/// ```
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("KINDLING_MALLOC_DEFAULTS").is_some_and(|v| v == "1") {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; both values are in the ranges
        // glibc documents (it returns 0 and changes nothing otherwise).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}

//! Counting multiply-accumulates of a forward pass (timm and fvcore report these as "FLOPs"):
//! convolutions and linear layers add theirs while [`count_macs`] runs. Attention matmuls
//! are added by [`add_macs`] from the layers that compute them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static MACS: AtomicU64 = AtomicU64::new(0);

/// Adds `n` multiply-accumulates to the running count (no-op when not counting).
pub fn add_macs(n: u64) {
    if COUNTING.load(Ordering::Relaxed) {
        MACS.fetch_add(n, Ordering::Relaxed);
    }
}

/// Runs `f` and returns its result with the multiply-accumulates of the Kindling layers it ran.
/// Not re-entrant: a count in another thread at the same time adds to this one.
pub fn count_macs<T>(f: impl FnOnce() -> T) -> (T, u64) {
    MACS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let out = f();
    COUNTING.store(false, Ordering::Relaxed);
    (out, MACS.load(Ordering::Relaxed))
}

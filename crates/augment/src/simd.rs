//! Runtime CPU-feature dispatch for the pixel kernels that interleaved RGB defeats.
//!
//! Rust's default x86-64 target has SSE2 only, which has no byte shuffle: loops over 3-byte
//! pixels (flips, luma, normalisation, resize taps) stay scalar. [`kernel!`] compiles a
//! kernel's body a second time with a target feature (SSSE3's `pshufb`, AVX2) and picks that
//! copy at run time when the CPU has it. Both copies are the same Rust code, so results are identical; only
//! the instructions differ. Written by hand because the maintained crates (`multiversion`,
//! `pulp`) would add a dependency for four call sites (flip, grayscale, normalize, bilinear).

/// Defines `fn $name(args)` whose body is also compiled with `#[target_feature(enable =
/// $feature)]` and used when the CPU reports `$feature` (x86-64 only).
macro_rules! kernel {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) [$feature:tt] $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = $feature)]
            unsafe fn featured($($arg: $ty),*) {
                portable($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!($feature) {
                // SAFETY: the CPU has the feature, checked on the line above.
                return unsafe { featured($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}

pub(crate) use kernel;

/// Whether the CPU has AVX-512 F, BW and VBMI: what every byte-permute kernel needs (tables,
/// flips, the colour conversions, the warp and resize rows).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512_vbmi() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vbmi")
}

//! 16 interleaved RGB or RGBA `u8` pixels at a time as one AVX-512 vector of `u32` lanes
//! (`r | g << 8 | b << 16`), for the colour-space kernels: VBMI byte permutes split 48 bytes of
//! RGB into lanes and join them again, RGBA is a plain load with its alpha kept aside.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Byte `j` of the lanes from the 48 packed bytes of 16 RGB pixels (byte 3 of a lane from byte
/// 0, unused).
const SPREAD: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 64 {
        idx[j] = if j % 4 == 3 {
            0
        } else {
            (j / 4 * 3 + j % 4) as u8
        };
        j += 1;
    }
    idx
};

/// The inverse: the low three bytes of each lane back to 48 packed bytes.
pub(crate) const PACK: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 48 {
        idx[j] = (j / 3 * 4 + j % 3) as u8;
        j += 1;
    }
    idx
};

/// The 16 pixels of `C` (3 or 4) channels at `at` as lanes `r | g << 8 | b << 16 | ?`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `16·C` bytes at `at` are readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn load_pixels<const C: usize>(at: *const u8) -> __m512i {
    if C == 4 {
        // SAFETY: 64 bytes are readable (the caller's contract).
        unsafe { _mm512_loadu_si512(at.cast()) }
    } else {
        // SAFETY: 48 bytes are readable; the masked load touches only those.
        let packed = unsafe { _mm512_maskz_loadu_epi8((1u64 << 48) - 1, at.cast()) };
        // SAFETY: the table is 64 bytes.
        let spread = unsafe { _mm512_loadu_si512(SPREAD.as_ptr().cast()) };
        _mm512_permutexvar_epi8(spread, packed)
    }
}

/// Writes the low three bytes of each lane as the first three channels of the 16 pixels of `C`
/// (3 or 4) channels at `at` (a fourth channel is kept).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `16·C` bytes at `at` are writable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn store_pixels<const C: usize>(at: *mut u8, lanes: __m512i) {
    if C == 4 {
        // SAFETY: 64 bytes are readable and writable; the masked store skips every alpha byte.
        unsafe { _mm512_mask_storeu_epi8(at.cast(), 0x7777_7777_7777_7777, lanes) };
    } else {
        // SAFETY: the table is 64 bytes; 48 bytes are writable and the store touches only those.
        let pack = unsafe { _mm512_loadu_si512(PACK.as_ptr().cast()) };
        unsafe {
            _mm512_mask_storeu_epi8(
                at.cast(),
                (1u64 << 48) - 1,
                _mm512_permutexvar_epi8(pack, lanes),
            )
        };
    }
}

/// Replaces the first three channels of every whole block of 16 pixels of `data` (`c` = 3 or
/// 4) by `f(lanes)`'s low three bytes per lane; returns the bytes done (the caller does the
/// tail).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI ([`crate::simd::has_avx512_vbmi`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn map_blocks(
    data: &mut [u8],
    c: usize,
    mut f: impl FnMut(__m512i) -> __m512i,
) -> usize {
    assert!(c == 3 || c == 4, "3 or 4 channels, got {c}");
    let block = 16 * c;
    for chunk in data.chunks_exact_mut(block) {
        let at = chunk.as_mut_ptr();
        // SAFETY: the CPU has the features (the caller's contract), the chunk is 16·c bytes.
        unsafe {
            if c == 4 {
                store_pixels::<4>(at, f(load_pixels::<4>(at)));
            } else {
                store_pixels::<3>(at, f(load_pixels::<3>(at)));
            }
        }
    }
    data.len() / block * block
}

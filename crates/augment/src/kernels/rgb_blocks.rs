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
    // SAFETY (both loads): the tables are 64 bytes.
    let spread = unsafe { _mm512_loadu_si512(SPREAD.as_ptr().cast()) };
    let pack = unsafe { _mm512_loadu_si512(PACK.as_ptr().cast()) };
    let low = _mm512_set1_epi32(0x00ff_ffff);
    for chunk in data.chunks_exact_mut(block) {
        let at = chunk.as_mut_ptr();
        if c == 4 {
            // SAFETY: the chunk is 64 bytes.
            let px = unsafe { _mm512_loadu_si512(at.cast()) };
            let out = _mm512_or_si512(_mm512_and_si512(f(px), low), _mm512_andnot_si512(low, px));
            // SAFETY: as for the load.
            unsafe { _mm512_storeu_si512(at.cast(), out) };
        } else {
            let mask = (1u64 << 48) - 1;
            // SAFETY: the chunk is 48 bytes; the masked load and store touch only those.
            let packed = unsafe { _mm512_maskz_loadu_epi8(mask, at.cast()) };
            let out = _mm512_permutexvar_epi8(pack, f(_mm512_permutexvar_epi8(spread, packed)));
            unsafe { _mm512_mask_storeu_epi8(at.cast(), mask, out) };
        }
    }
    data.len() / block * block
}

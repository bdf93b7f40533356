//! The `u8` bilinear warp row ([`super::warp_rows::row_u8_bilinear`]) on 16 output pixels at a
//! time with AVX-512: the positions split into whole pixels and 1/32 fractions, OpenCV's 15-bit
//! weights and the four neighbours read by gathers, the same integer sums and rounding. A block
//! with any pixel whose 2×2 neighbourhood is not wholly inside the image goes to the scalar
//! row, so borders keep their exact handling; the results are the same bytes either way.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::rgb_blocks::PACK;
use super::warp::{Fill, TAB, TAB_BITS, bilinear_tab_i32};
use super::warp_rows::row_u8_bilinear;
use crate::ImageBuf;

/// [`row_u8_bilinear`] for `C` = 1, 3 or 4 channels.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI ([`crate::simd::has_avx512_vbmi`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(super) unsafe fn row<const C: usize>(
    src: &ImageBuf<u8>,
    xy: &[i32],
    out: &mut [u8],
    fill: Fill,
    cval: u8,
) {
    let (w, h) = (src.width(), src.height());
    let d = src.data();
    // Offsets are i32 lanes; gathers read 4 bytes from each tap's first byte.
    if d.len() >= (i32::MAX as usize) - 64 {
        return row_u8_bilinear::<C>(src, xy, out, fill, cval);
    }
    let stride = (w * C) as i32;
    let tab = bilinear_tab_i32();
    let n = out.len() / C;
    // SAFETY: the tables are 64 bytes.
    let pack3 = unsafe { _mm512_loadu_si512(PACK.as_ptr().cast()) };
    let (even, odd) = (
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
    );
    let zero = _mm512_setzero_si512();
    // The last byte a 4-byte read of the bottom-right tap may touch must lie inside the data.
    let limit = _mm512_set1_epi32(d.len() as i32 - 4);
    let mut b = 0;
    while b + 16 <= n {
        let (xy_b, out_b) = (&xy[2 * b..2 * b + 32], &mut out[C * b..C * (b + 16)]);
        // SAFETY: `xy_b` is 32 i32 values.
        let (p0, p1) = unsafe {
            (
                _mm512_loadu_si512(xy_b.as_ptr().cast()),
                _mm512_loadu_si512(xy_b[16..].as_ptr().cast()),
            )
        };
        let (x, y) = (
            _mm512_permutex2var_epi32(p0, even, p1),
            _mm512_permutex2var_epi32(p0, odd, p1),
        );
        let (ix, iy) = (
            _mm512_srai_epi32::<TAB_BITS_U>(x),
            _mm512_srai_epi32::<TAB_BITS_U>(y),
        );
        let i0 = _mm512_add_epi32(
            _mm512_mullo_epi32(iy, _mm512_set1_epi32(stride)),
            _mm512_mullo_epi32(ix, _mm512_set1_epi32(C as i32)),
        );
        let bottom_right = _mm512_add_epi32(i0, _mm512_set1_epi32(stride + C as i32));
        let inside = _mm512_cmpge_epi32_mask(ix, zero)
            & _mm512_cmpge_epi32_mask(iy, zero)
            & _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(w as i32 - 1))
            & _mm512_cmplt_epi32_mask(iy, _mm512_set1_epi32(h as i32 - 1))
            & _mm512_cmple_epi32_mask(bottom_right, limit);
        if inside != 0xffff {
            row_u8_bilinear::<C>(src, xy_b, out_b, fill, cval);
            b += 16;
            continue;
        }
        let frac = _mm512_set1_epi32(TAB - 1);
        let k = _mm512_add_epi32(
            _mm512_mullo_epi32(_mm512_and_si512(y, frac), _mm512_set1_epi32(TAB)),
            _mm512_and_si512(x, frac),
        );
        let k4 = _mm512_slli_epi32::<2>(k);
        let base = tab.as_ptr().cast::<i32>();
        // SAFETY: k < TAB², the table's length; the weights are its four i32 per entry. The
        // pixel gathers read 4 bytes at offsets checked against `limit` above.
        let (wt, taps) = unsafe {
            let wt: [__m512i; 4] = std::array::from_fn(|j| {
                _mm512_i32gather_epi32::<4>(_mm512_add_epi32(k4, _mm512_set1_epi32(j as i32)), base)
            });
            let at = |off: i32| {
                _mm512_i32gather_epi32::<1>(
                    _mm512_add_epi32(i0, _mm512_set1_epi32(off)),
                    d.as_ptr().cast(),
                )
            };
            (wt, [at(0), at(C as i32), at(stride), at(stride + C as i32)])
        };
        let round = _mm512_set1_epi32(1 << 14);
        let byte = _mm512_set1_epi32(0xff);
        let channel = |shift: u32| {
            let sum = taps.iter().zip(&wt).fold(round, |acc, (t, wk)| {
                let v =
                    _mm512_and_si512(_mm512_srl_epi32(*t, _mm_cvtsi32_si128(shift as i32)), byte);
                _mm512_add_epi32(acc, _mm512_mullo_epi32(v, *wk))
            });
            let v = _mm512_srai_epi32::<15>(sum);
            _mm512_min_epi32(_mm512_max_epi32(v, zero), byte)
        };
        let at = out_b.as_mut_ptr();
        match C {
            1 => {
                let v = _mm512_cvtepi32_epi8(channel(0));
                // SAFETY: the block's output is 16 bytes.
                unsafe { _mm_storeu_si128(at.cast(), v) };
            }
            3 => {
                let px = _mm512_or_si512(
                    _mm512_or_si512(channel(0), _mm512_slli_epi32::<8>(channel(8))),
                    _mm512_slli_epi32::<16>(channel(16)),
                );
                let packed = _mm512_permutexvar_epi8(pack3, px);
                // SAFETY: the block's output is 48 bytes; the masked store writes only those.
                unsafe { _mm512_mask_storeu_epi8(at.cast(), (1u64 << 48) - 1, packed) };
            }
            _ => {
                let px = _mm512_or_si512(
                    _mm512_or_si512(channel(0), _mm512_slli_epi32::<8>(channel(8))),
                    _mm512_or_si512(
                        _mm512_slli_epi32::<16>(channel(16)),
                        _mm512_slli_epi32::<24>(channel(24)),
                    ),
                );
                // SAFETY: the block's output is 64 bytes.
                unsafe { _mm512_storeu_si512(at.cast(), px) };
            }
        }
        b += 16;
    }
    row_u8_bilinear::<C>(src, &xy[2 * b..], &mut out[C * b..], fill, cval);
}

const TAB_BITS_U: u32 = TAB_BITS as u32;

//! The `u8` bilinear warp row ([`super::warp_rows::row_u8_bilinear`]) on 8 output pixels at a
//! time with AVX2, for CPUs without AVX-512 (Zen 1–3, Intel before Ice Lake): the same steps
//! as [`super::warp_u8_avx512`] — whole pixels and 1/32 fractions from the positions, OpenCV's
//! 15-bit weights and the four neighbours by gathers, the same integer sums and rounding — and
//! blocks touching the border go to the scalar row, so the bytes are the same.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::rgb_blocks::avx2::PACK;
use super::warp::{Fill, TAB, TAB_BITS, bilinear_tab_i32};
use super::warp_rows::row_u8_bilinear;
use crate::ImageBuf;

/// [`row_u8_bilinear`] for `C` = 1, 3 or 4 channels.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
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
    let zero = _mm256_setzero_si256();
    // The last byte a 4-byte read of the bottom-right tap may touch must lie inside the data.
    let limit = _mm256_set1_epi32(d.len() as i32 - 4);
    let (x_max, y_max) = (
        _mm256_set1_epi32(w as i32 - 2),
        _mm256_set1_epi32(h as i32 - 2),
    );
    // SAFETY: the table is 32 bytes.
    let pack3 = unsafe { _mm256_loadu_si256(PACK.as_ptr().cast()) };
    let mut b = 0;
    while b + 8 <= n {
        let (xy_b, out_b) = (&xy[2 * b..2 * b + 16], &mut out[C * b..C * (b + 8)]);
        // SAFETY: `xy_b` is 16 i32 values.
        let (p0, p1) = unsafe {
            (
                _mm256_castsi256_ps(_mm256_loadu_si256(xy_b.as_ptr().cast())),
                _mm256_castsi256_ps(_mm256_loadu_si256(xy_b[8..].as_ptr().cast())),
            )
        };
        // Per half [x0 x1 x4 x5 | x2 x3 x6 x7], then the 64-bit pairs back in order.
        let (x, y) = (
            _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_castps_si256(_mm256_shuffle_ps::<
                0b10_00_10_00,
            >(p0, p1))),
            _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_castps_si256(_mm256_shuffle_ps::<
                0b11_01_11_01,
            >(p0, p1))),
        );
        let (ix, iy) = (
            _mm256_srai_epi32::<TAB_BITS>(x),
            _mm256_srai_epi32::<TAB_BITS>(y),
        );
        let i0 = _mm256_add_epi32(
            _mm256_mullo_epi32(iy, _mm256_set1_epi32(stride)),
            _mm256_mullo_epi32(ix, _mm256_set1_epi32(C as i32)),
        );
        let bottom_right = _mm256_add_epi32(i0, _mm256_set1_epi32(stride + C as i32));
        let outside = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpgt_epi32(zero, ix), _mm256_cmpgt_epi32(zero, iy)),
            _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpgt_epi32(ix, x_max), _mm256_cmpgt_epi32(iy, y_max)),
                _mm256_cmpgt_epi32(bottom_right, limit),
            ),
        );
        if _mm256_testz_si256(outside, outside) == 0 {
            row_u8_bilinear::<C>(src, xy_b, out_b, fill, cval);
            b += 8;
            continue;
        }
        let frac = _mm256_set1_epi32(TAB - 1);
        let k = _mm256_add_epi32(
            _mm256_mullo_epi32(_mm256_and_si256(y, frac), _mm256_set1_epi32(TAB)),
            _mm256_and_si256(x, frac),
        );
        let k4 = _mm256_slli_epi32::<2>(k);
        let base = tab.as_ptr().cast::<i32>();
        // SAFETY: k < TAB², the table's length; the weights are its four i32 per entry. The
        // pixel gathers read 4 bytes at offsets checked against `limit` above.
        let (wt, taps) = unsafe {
            let wt: [__m256i; 4] = std::array::from_fn(|j| {
                _mm256_i32gather_epi32::<4>(base, _mm256_add_epi32(k4, _mm256_set1_epi32(j as i32)))
            });
            let at = |off: i32| {
                _mm256_i32gather_epi32::<1>(
                    d.as_ptr().cast(),
                    _mm256_add_epi32(i0, _mm256_set1_epi32(off)),
                )
            };
            (wt, [at(0), at(C as i32), at(stride), at(stride + C as i32)])
        };
        let round = _mm256_set1_epi32(1 << 14);
        let byte = _mm256_set1_epi32(0xff);
        let channel = |shift: i32| {
            let sum = taps.iter().zip(&wt).fold(round, |acc, (t, wk)| {
                let v = _mm256_and_si256(_mm256_srl_epi32(*t, _mm_cvtsi32_si128(shift)), byte);
                _mm256_add_epi32(acc, _mm256_mullo_epi32(v, *wk))
            });
            let v = _mm256_srai_epi32::<15>(sum);
            _mm256_min_epi32(_mm256_max_epi32(v, zero), byte)
        };
        let at = out_b.as_mut_ptr();
        match C {
            1 => {
                // Lane bytes 0 → the first 4 bytes of each half, then the halves side by side.
                let v = _mm256_packus_epi16(_mm256_packus_epi32(channel(0), zero), zero);
                let v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
                // SAFETY: the block's output is 8 bytes.
                unsafe { _mm_storel_epi64(at.cast(), _mm256_castsi256_si128(v)) };
            }
            3 => {
                let px = _mm256_or_si256(
                    _mm256_or_si256(channel(0), _mm256_slli_epi32::<8>(channel(8))),
                    _mm256_slli_epi32::<16>(channel(16)),
                );
                let v = _mm256_shuffle_epi8(px, pack3);
                let v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
                // SAFETY: the block's output is 24 bytes: 16 then 8.
                unsafe {
                    _mm_storeu_si128(at.cast(), _mm256_castsi256_si128(v));
                    _mm_storel_epi64(at.add(16).cast(), _mm256_extracti128_si256::<1>(v));
                }
            }
            _ => {
                let px = _mm256_or_si256(
                    _mm256_or_si256(channel(0), _mm256_slli_epi32::<8>(channel(8))),
                    _mm256_or_si256(
                        _mm256_slli_epi32::<16>(channel(16)),
                        _mm256_slli_epi32::<24>(channel(24)),
                    ),
                );
                // SAFETY: the block's output is 32 bytes.
                unsafe { _mm256_storeu_si256(at.cast(), px) };
            }
        }
        b += 8;
    }
    row_u8_bilinear::<C>(src, &xy[2 * b..], &mut out[C * b..], fill, cval);
}

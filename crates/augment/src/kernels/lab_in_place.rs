//! RGB ↔ OpenCV 8-bit Lab in place, for CLAHE and `multiply_brightness` in Lab: the pixels of
//! an interleaved RGB(A) buffer become `[L, a, b]` (alpha untouched) and back.
//!
//! The portable path is [`rgb_to_lab`] / [`lab_to_rgb`] pixel by pixel. The AVX-512 path does
//! the same `i32` arithmetic on 16 pixels at a time, OpenCV's tables read by gathers; both give
//! the same bytes (tested on a lattice of the RGB cube and every `L` with a lattice of `a, b`).

use super::colorspace::{LabTables, lab_tables, lab_to_rgb, rgb_to_lab};

/// Converts every pixel of `data` (`c` = 3 or 4 channels) from RGB to Lab in place.
pub(crate) fn rgb_to_lab_in_place(data: &mut [u8], c: usize) {
    convert(data, c, true);
}

/// Converts every pixel of `data` (`c` = 3 or 4 channels) from Lab to RGB in place.
pub(crate) fn lab_to_rgb_in_place(data: &mut [u8], c: usize) {
    convert(data, c, false);
}

fn convert(data: &mut [u8], c: usize, to_lab: bool) {
    let t = lab_tables();
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512_vbmi() && (c == 3 || c == 4) {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked on the line above.
        done = unsafe { avx512::convert(data, c, t, to_lab) };
    }
    let f = if to_lab { rgb_to_lab } else { lab_to_rgb };
    for px in data[done..].chunks_exact_mut(c) {
        let out = f(t, px[0], px[1], px[2]);
        px[..3].copy_from_slice(&out);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::LabTables;
    use crate::kernels::colorspace::{INV_GAMMA_SIZE, LAB_SHIFT, LAB_SHIFT2, LUT_BASE, MIN_AB};
    use crate::kernels::rgb_blocks::map_blocks;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn gather(table: &[i32], idx: __m512i) -> __m512i {
        // SAFETY: the callers clamp every index into the table (or it is a byte into a
        // 256-entry table).
        unsafe { _mm512_i32gather_epi32::<4>(idx, table.as_ptr()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn clamp(x: __m512i, lo: i32, hi: i32) -> __m512i {
        _mm512_min_epi32(
            _mm512_max_epi32(x, _mm512_set1_epi32(lo)),
            _mm512_set1_epi32(hi),
        )
    }

    /// `(x + 2^(n−1)) >> n`, arithmetic, as `colorspace::descale`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn descale<const N: u32>(x: __m512i) -> __m512i {
        _mm512_srai_epi32::<N>(_mm512_add_epi32(x, _mm512_set1_epi32(1 << (N - 1))))
    }

    /// `m[k]·x + m[k+1]·y + m[k+2]·z` per lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn row(m: &[i32; 9], k: usize, [x, y, z]: [__m512i; 3]) -> __m512i {
        let term = |v, c: i32| _mm512_mullo_epi32(v, _mm512_set1_epi32(c));
        _mm512_add_epi32(
            _mm512_add_epi32(term(x, m[k]), term(y, m[k + 1])),
            term(z, m[k + 2]),
        )
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn channels(px: __m512i) -> [__m512i; 3] {
        let byte = _mm512_set1_epi32(0xff);
        [
            _mm512_and_si512(px, byte),
            _mm512_and_si512(_mm512_srli_epi32::<8>(px), byte),
            _mm512_and_si512(_mm512_srli_epi32::<16>(px), byte),
        ]
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn join([a, b, c]: [__m512i; 3]) -> __m512i {
        _mm512_or_si512(
            _mm512_or_si512(a, _mm512_slli_epi32::<8>(b)),
            _mm512_slli_epi32::<16>(c),
        )
    }

    /// `colorspace::rgb_to_lab` on 16 pixels.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn to_lab(px: __m512i, t: &LabTables) -> __m512i {
        let w = &t.wide;
        let rgb = channels(px).map(|v| gather(&w.gamma, v));
        let f = |k| {
            gather(
                &w.cbrt,
                clamp(
                    descale::<{ LAB_SHIFT as u32 }>(row(&t.to_xyz, k, rgb)),
                    0,
                    3071,
                ),
            )
        };
        let (fx, fy, fz) = (f(0), f(3), f(6));
        let mul = |v, c: i32| _mm512_mullo_epi32(v, _mm512_set1_epi32(c));
        let offset = _mm512_set1_epi32(128 << LAB_SHIFT2);
        let l = descale::<{ LAB_SHIFT2 as u32 }>(_mm512_sub_epi32(
            mul(fy, 296),
            _mm512_set1_epi32(1_336_934),
        ));
        let a = descale::<{ LAB_SHIFT2 as u32 }>(_mm512_add_epi32(
            mul(_mm512_sub_epi32(fx, fy), 500),
            offset,
        ));
        let b = descale::<{ LAB_SHIFT2 as u32 }>(_mm512_add_epi32(
            mul(_mm512_sub_epi32(fy, fz), 200),
            offset,
        ));
        join([l, a, b].map(|v| clamp(v, 0, 255)))
    }

    /// `colorspace::lab_to_rgb` on 16 pixels.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn to_rgb(px: __m512i, t: &LabTables) -> __m512i {
        let w = &t.wide;
        let [l, a, b] = channels(px);
        let (y, ify) = (gather(&w.y, l), gather(&w.fy, l));
        let mul = |v, c: i32| _mm512_mullo_epi32(v, _mm512_set1_epi32(c));
        let add = |v, c: i32| _mm512_add_epi32(v, _mm512_set1_epi32(c));
        let adiv = add(
            _mm512_srai_epi32::<13>(add(mul(a, 5 * 53687), 1 << 7)),
            -(128 * LUT_BASE / 500),
        );
        let bdiv = add(
            _mm512_srai_epi32::<9>(add(mul(b, 41943), 1 << 4)),
            -(128 * LUT_BASE / 200) + 1,
        );
        let last = t.ab_xz.len() as i32 - 1;
        let x = gather(
            &t.ab_xz,
            clamp(add(_mm512_add_epi32(ify, adiv), -MIN_AB), 0, last),
        );
        let z = gather(
            &t.ab_xz,
            clamp(add(_mm512_sub_epi32(ify, bdiv), -MIN_AB), 0, last),
        );
        let xyz = [x, y, z];
        let ch = |k| {
            let v = clamp(
                descale::<14>(row(&t.to_rgb, k, xyz)),
                0,
                INV_GAMMA_SIZE as i32 - 1,
            );
            gather(&w.inv_gamma, v)
        };
        join([ch(0), ch(3), ch(6)])
    }

    /// Whole blocks of 16 pixels; returns the bytes done.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn convert(data: &mut [u8], c: usize, t: &LabTables, lab: bool) -> usize {
        // SAFETY: the caller checked the CPU's features.
        unsafe {
            if lab {
                map_blocks(data, c, |px| to_lab(px, t))
            } else {
                map_blocks(data, c, |px| to_rgb(px, t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_pixels::{rgb_lattice, with_alpha};

    #[test]
    fn both_directions_equal_the_pixel_by_pixel_conversion() {
        let t = lab_tables();
        let rgb = rgb_lattice();
        // Every L with a lattice of a and b (every 3rd value) for the way back.
        let mut lab = Vec::new();
        for l in 0..=255u8 {
            for a in (0..=255u8).step_by(3) {
                for b in (0..=255u8).step_by(17) {
                    lab.extend([l, a, b]);
                }
            }
        }
        lab.extend([200, 255, 0]);
        for (input, forward) in [(&rgb, true), (&lab, false)] {
            let f = if forward { rgb_to_lab } else { lab_to_rgb };
            for c in [3, 4] {
                let data = if c == 3 {
                    input.clone()
                } else {
                    with_alpha(input)
                };
                let mut expected = data.clone();
                for px in expected.chunks_exact_mut(c) {
                    let out = f(t, px[0], px[1], px[2]);
                    px[..3].copy_from_slice(&out);
                }
                let mut out = data.clone();
                convert(&mut out, c, forward);
                assert_eq!(out, expected, "to Lab {forward}, {c} channels");
            }
        }
    }
}

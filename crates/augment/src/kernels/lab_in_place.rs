//! RGB ↔ OpenCV 8-bit Lab in place, for CLAHE and `multiply_brightness` in Lab: the pixels of
//! an interleaved RGB(A) buffer become `[L, a, b]` (alpha untouched) and back.
//!
//! The portable path is [`rgb_to_lab`] / [`lab_to_rgb`] pixel by pixel. The vector paths do
//! the same `i32` arithmetic on 16 pixels at a time with AVX-512 and on 8 with AVX2 (one body
//! for both), OpenCV's tables read by gathers; all give the same bytes (tested on a lattice of
//! the RGB cube and every `L` with a lattice of `a, b`).

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
        done = unsafe { vector::convert_avx512(data, c, t, to_lab) };
    } else if std::arch::is_x86_feature_detected!("avx2") && (c == 3 || c == 4) {
        // SAFETY: the CPU has AVX2, checked on the line above.
        done = unsafe { vector::convert_avx2(data, c, t, to_lab) };
    }
    let f = if to_lab { rgb_to_lab } else { lab_to_rgb };
    for px in data[done..].chunks_exact_mut(c) {
        let out = f(t, px[0], px[1], px[2]);
        px[..3].copy_from_slice(&out);
    }
}

/// The vector paths: one body generic over the lane width ([`super::lanes`]), a wrapper per
/// instruction set.
#[cfg(target_arch = "x86_64")]
mod vector {
    use super::LabTables;
    use crate::kernels::colorspace::{INV_GAMMA_SIZE, LAB_SHIFT, LAB_SHIFT2, LUT_BASE, MIN_AB};
    use crate::kernels::lanes::{I32x8, I32x16, Lanes};
    use crate::kernels::rgb_blocks;

    /// `table[idx]`; the callers clamp every index into the table (or it is a byte into a
    /// 256-entry table).
    #[inline(always)]
    fn gather<L: Lanes>(table: &[i32], idx: L) -> L {
        // SAFETY: every index is inside the table (above).
        unsafe { L::gather(table, idx) }
    }

    /// `m[k]·x + m[k+1]·y + m[k+2]·z` per lane.
    #[inline(always)]
    fn row<L: Lanes>(m: &[i32; 9], k: usize, [x, y, z]: [L; 3]) -> L {
        x.mul_k(m[k]).add(y.mul_k(m[k + 1])).add(z.mul_k(m[k + 2]))
    }

    // No closures in the generic bodies below: a closure is compiled on its own, without the
    // wrapper's target features, and the intrinsics in it then stay calls (measured 3.5×
    // slower).

    /// `cbrt[clamp(descale(row k of to_xyz · rgb))]`: one of `colorspace::rgb_to_lab`'s f(X),
    /// f(Y), f(Z).
    #[inline(always)]
    fn cbrt_of<L: Lanes>(t: &LabTables, k: usize, rgb: [L; 3]) -> L {
        let xyz = row(&t.to_xyz, k, rgb).descale(LAB_SHIFT).clamp(0, 3071);
        gather(&t.wide.cbrt, xyz)
    }

    /// `colorspace::rgb_to_lab` on one vector of pixels.
    #[inline(always)]
    fn to_lab<L: Lanes>(px: L, t: &LabTables) -> L {
        let w = &t.wide;
        let [r, g, b] = px.channels();
        let rgb = [
            gather(&w.gamma, r),
            gather(&w.gamma, g),
            gather(&w.gamma, b),
        ];
        let (fx, fy, fz) = (cbrt_of(t, 0, rgb), cbrt_of(t, 3, rgb), cbrt_of(t, 6, rgb));
        let offset = 128 << LAB_SHIFT2;
        let l = fy.mul_k(296).add_k(-1_336_934).descale(LAB_SHIFT2);
        let a = fx.sub(fy).mul_k(500).add_k(offset).descale(LAB_SHIFT2);
        let b = fy.sub(fz).mul_k(200).add_k(offset).descale(LAB_SHIFT2);
        L::join([l.clamp(0, 255), a.clamp(0, 255), b.clamp(0, 255)])
    }

    /// `inv_gamma[clamp(descale(row k of to_rgb · xyz))]`: one channel of
    /// `colorspace::lab_to_rgb`.
    #[inline(always)]
    fn channel_of<L: Lanes>(t: &LabTables, k: usize, xyz: [L; 3]) -> L {
        let v = row(&t.to_rgb, k, xyz)
            .descale(14)
            .clamp(0, INV_GAMMA_SIZE as i32 - 1);
        gather(&t.wide.inv_gamma, v)
    }

    /// `colorspace::lab_to_rgb` on one vector of pixels.
    #[inline(always)]
    fn to_rgb<L: Lanes>(px: L, t: &LabTables) -> L {
        let w = &t.wide;
        let [l, a, b] = px.channels();
        let (y, ify) = (gather(&w.y, l), gather(&w.fy, l));
        let adiv = a
            .mul_k(5 * 53687)
            .add_k(1 << 7)
            .shr(13)
            .add_k(-(128 * LUT_BASE / 500));
        let bdiv = b
            .mul_k(41943)
            .add_k(1 << 4)
            .shr(9)
            .add_k(-(128 * LUT_BASE / 200) + 1);
        let last = t.ab_xz.len() as i32 - 1;
        let x = gather(&t.ab_xz, ify.add(adiv).add_k(-MIN_AB).clamp(0, last));
        let z = gather(&t.ab_xz, ify.sub(bdiv).add_k(-MIN_AB).clamp(0, last));
        let xyz = [x, y, z];
        L::join([
            channel_of(t, 0, xyz),
            channel_of(t, 3, xyz),
            channel_of(t, 6, xyz),
        ])
    }

    /// Whole blocks of 16 pixels with AVX-512; returns the bytes done.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn convert_avx512(
        data: &mut [u8],
        c: usize,
        t: &LabTables,
        lab: bool,
    ) -> usize {
        // Two calls, not a function pointer: the bodies must inline here to get the features.
        // SAFETY: the caller checked the CPU's features.
        unsafe {
            if lab {
                rgb_blocks::map_blocks(data, c, |px| to_lab(I32x16(px), t).0)
            } else {
                rgb_blocks::map_blocks(data, c, |px| to_rgb(I32x16(px), t).0)
            }
        }
    }

    /// Whole blocks of 8 pixels with AVX2; returns the bytes done.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn convert_avx2(
        data: &mut [u8],
        c: usize,
        t: &LabTables,
        lab: bool,
    ) -> usize {
        // SAFETY: the caller checked the CPU's features.
        unsafe {
            if lab {
                rgb_blocks::avx2::map_blocks(data, c, |px| to_lab(I32x8(px), t).0)
            } else {
                rgb_blocks::avx2::map_blocks(data, c, |px| to_rgb(I32x8(px), t).0)
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
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut out = data.clone();
                    // SAFETY: checked on the line above.
                    let done = unsafe { vector::convert_avx2(&mut out, c, t, forward) };
                    for px in out[done..].chunks_exact_mut(c) {
                        let v = f(t, px[0], px[1], px[2]);
                        px[..3].copy_from_slice(&v);
                    }
                    assert_eq!(out, expected, "avx2: to Lab {forward}, {c} channels");
                }
            }
        }
    }
}

//! The per-row sampling kernels of the warp core ([`super::warp`]): each output pixel has a
//! source position in 1/32 pixel; `u8` bilinear uses OpenCV's 15-bit fixed-point weights
//! (`remapBilinear`), the rest float weights on the same positions.

use super::warp::{
    Fill, Interpolation, TAB, TAB_BITS, bilinear_tab_f32, bilinear_tab_i32, border_index,
    cubic_tab, round_px,
};
use crate::{ImageBuf, Pixel};

/// The offset of pixel `(x, y)` after border handling, `None` for the constant border.
#[inline]
fn tap(x: i64, y: i64, w: usize, h: usize, fill: Fill, c: usize) -> Option<usize> {
    Some((border_index(y, h, fill)? * w + border_index(x, w, fill)?) * c)
}

/// True where a `k × k` neighbourhood starting at `(x, y)` lies entirely outside the image.
#[inline]
fn all_outside(x: i32, y: i32, k: i32, w: usize, h: usize) -> bool {
    x >= w as i32 || x + k <= 0 || y >= h as i32 || y + k <= 0
}

/// [`row_u8_bilinear`], 16 pixels at a time where the CPU has AVX-512, 8 with AVX2 (the same
/// bytes).
pub(super) fn row_u8_bilinear_any<const C: usize>(
    src: &ImageBuf<u8>,
    xy: &[i32],
    out: &mut [u8],
    fill: Fill,
    cval: u8,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512_vbmi() {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked on the line above.
        return unsafe { super::warp_u8_avx512::row::<C>(src, xy, out, fill, cval) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked on the line above.
        return unsafe { super::warp_u8_avx2::row::<C>(src, xy, out, fill, cval) };
    }
    row_u8_bilinear::<C>(src, xy, out, fill, cval)
}

pub(super) fn row_u8_bilinear<const C: usize>(
    src: &ImageBuf<u8>,
    xy: &[i32],
    out: &mut [u8],
    fill: Fill,
    cval: u8,
) {
    let (w, h) = (src.width(), src.height());
    let d = src.data();
    let stride = w * C;
    let tab = bilinear_tab_i32();
    for (o, p) in out.chunks_exact_mut(C).zip(xy.chunks_exact(2)) {
        let (ix, iy) = (p[0] >> TAB_BITS, p[1] >> TAB_BITS);
        let wt = tab[((p[1] & (TAB - 1)) * TAB + (p[0] & (TAB - 1))) as usize];
        if ix >= 0 && iy >= 0 && (ix as usize) + 1 < w && (iy as usize) + 1 < h {
            let i0 = iy as usize * stride + ix as usize * C;
            let (i1, i2) = (i0 + C, i0 + stride);
            for k in 0..C {
                let s = d[i0 + k] as i32 * wt[0]
                    + d[i1 + k] as i32 * wt[1]
                    + d[i2 + k] as i32 * wt[2]
                    + d[i2 + C + k] as i32 * wt[3];
                o[k] = ((s + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        } else if fill == Fill::Constant && all_outside(ix, iy, 2, w, h) {
            o.fill(cval);
        } else {
            let (x, y) = (ix as i64, iy as i64);
            let taps = [
                tap(x, y, w, h, fill, C),
                tap(x + 1, y, w, h, fill, C),
                tap(x, y + 1, w, h, fill, C),
                tap(x + 1, y + 1, w, h, fill, C),
            ];
            for k in 0..C {
                let s: i32 = taps
                    .iter()
                    .zip(wt)
                    .map(|(t, wk)| t.map_or(cval, |i| d[i + k]) as i32 * wk)
                    .sum();
                o[k] = ((s + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        }
    }
}

pub(super) fn row_generic<P: Pixel, const C: usize>(
    src: &ImageBuf<P>,
    xy: &[i32],
    out: &mut [P],
    interp: Interpolation,
    fill: Fill,
    cval: P,
) {
    let (w, h) = (src.width(), src.height());
    let d = src.data();
    let stride = w * C;
    let cv = cval.to_f32();
    match interp {
        Interpolation::Nearest => {
            for (o, p) in out.chunks_exact_mut(C).zip(xy.chunks_exact(2)) {
                let (x, y) = ((p[0] >> TAB_BITS) as i64, (p[1] >> TAB_BITS) as i64);
                match tap(x, y, w, h, fill, C) {
                    Some(i) => o.copy_from_slice(&d[i..i + C]),
                    None => o.fill(cval),
                }
            }
        }
        Interpolation::Bilinear => {
            let tab = bilinear_tab_f32();
            for (o, p) in out.chunks_exact_mut(C).zip(xy.chunks_exact(2)) {
                let (ix, iy) = (p[0] >> TAB_BITS, p[1] >> TAB_BITS);
                let wt = tab[((p[1] & (TAB - 1)) * TAB + (p[0] & (TAB - 1))) as usize];
                if ix >= 0 && iy >= 0 && (ix as usize) + 1 < w && (iy as usize) + 1 < h {
                    let i0 = iy as usize * stride + ix as usize * C;
                    let (i1, i2) = (i0 + C, i0 + stride);
                    for k in 0..C {
                        o[k] = round_px::<P>(
                            d[i0 + k].to_f32() * wt[0]
                                + d[i1 + k].to_f32() * wt[1]
                                + d[i2 + k].to_f32() * wt[2]
                                + d[i2 + C + k].to_f32() * wt[3],
                        );
                    }
                } else if fill == Fill::Constant && all_outside(ix, iy, 2, w, h) {
                    o.fill(cval);
                } else {
                    let (x, y) = (ix as i64, iy as i64);
                    let taps = [
                        tap(x, y, w, h, fill, C),
                        tap(x + 1, y, w, h, fill, C),
                        tap(x, y + 1, w, h, fill, C),
                        tap(x + 1, y + 1, w, h, fill, C),
                    ];
                    for k in 0..C {
                        let s: f32 = taps
                            .iter()
                            .zip(wt)
                            .map(|(t, wk)| t.map_or(cv, |i| d[i + k].to_f32()) * wk)
                            .sum();
                        o[k] = round_px::<P>(s);
                    }
                }
            }
        }
        Interpolation::Bicubic => {
            let tab = cubic_tab();
            for (o, p) in out.chunks_exact_mut(C).zip(xy.chunks_exact(2)) {
                let (ix, iy) = ((p[0] >> TAB_BITS) - 1, (p[1] >> TAB_BITS) - 1);
                let (wx, wy) = (
                    tab[(p[0] & (TAB - 1)) as usize],
                    tab[(p[1] & (TAB - 1)) as usize],
                );
                if fill == Fill::Constant && all_outside(ix, iy, 4, w, h) {
                    o.fill(cval);
                    continue;
                }
                let inside = ix >= 0 && iy >= 0 && (ix as usize) + 3 < w && (iy as usize) + 3 < h;
                let mut acc = [0f32; C];
                for (j, wyj) in wy.iter().enumerate() {
                    for (i, wxi) in wx.iter().enumerate() {
                        let wt = wyj * wxi;
                        let t = if inside {
                            Some((iy as usize + j) * stride + (ix as usize + i) * C)
                        } else {
                            tap(ix as i64 + i as i64, iy as i64 + j as i64, w, h, fill, C)
                        };
                        for (k, a) in acc.iter_mut().enumerate() {
                            *a += t.map_or(cv, |t| d[t + k].to_f32()) * wt;
                        }
                    }
                }
                for k in 0..C {
                    // Cubic overshoots: clamp to the type's range (from_f32 saturates integers).
                    o[k] = round_px::<P>(acc[k].clamp(0.0, P::MAX));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector row of `C` channels.
    type Row = unsafe fn(&ImageBuf<u8>, &[i32], &mut [u8], Fill, u8);

    /// `row` equals the scalar row on positions inside, across and outside the borders.
    fn equals_scalar<const C: usize>(name: &str, row: Row) {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: i32| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as i32
        };
        for (w, h) in [(40usize, 30usize), (2, 2), (17, 5)] {
            let data: Vec<u8> = (0..w * h * C).map(|i| (i * 97 % 256) as u8).collect();
            let src = ImageBuf::new(w, h, C, data).expect("valid size");
            // 1/32-pixel positions from 3 pixels outside to 3 outside on the far side, with
            // runs wholly inside so that whole blocks take the vector path.
            let n = 16 * 40 + 7;
            let xy: Vec<i32> = (0..n)
                .flat_map(|i| {
                    if i % 64 < 32 {
                        [next((w as i32 - 1) * 32), next((h as i32 - 1) * 32)]
                    } else {
                        [
                            next((w as i32 + 6) * 32) - 96,
                            next((h as i32 + 6) * 32) - 96,
                        ]
                    }
                })
                .collect();
            for fill in [Fill::Constant, Fill::Edge, Fill::Reflect] {
                let mut expected = vec![0u8; n * C];
                let mut out = vec![0u8; n * C];
                row_u8_bilinear::<C>(&src, &xy, &mut expected, fill, 7);
                // SAFETY: the callers pass only paths the CPU has.
                unsafe { row(&src, &xy, &mut out, fill, 7) };
                assert_eq!(out, expected, "{name}: {w}×{h}×{C}, {fill:?}");
            }
        }
    }

    #[test]
    fn vector_rows_equal_the_scalar_row_inside_across_and_outside_the_borders() {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::{warp_u8_avx2 as v2, warp_u8_avx512 as v5};
            if crate::simd::has_avx512_vbmi() {
                equals_scalar::<1>("avx512", v5::row::<1>);
                equals_scalar::<3>("avx512", v5::row::<3>);
                equals_scalar::<4>("avx512", v5::row::<4>);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                equals_scalar::<1>("avx2", v2::row::<1>);
                equals_scalar::<3>("avx2", v2::row::<3>);
                equals_scalar::<4>("avx2", v2::row::<4>);
            }
        }
    }
}

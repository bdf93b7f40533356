//! OpenCV's 8-bit colour conversions, ported from OpenCV 4.x (`color_hsv.simd.hpp`,
//! `color_lab.cpp`) because imgaug and Albumentations run their colour ops through
//! `cv2.cvtColor` and no maintained Rust crate reproduces OpenCV's fixed-point tables:
//!
//! - RGB → HSV: integer, H in `0..180`, S and V in `0..=255` (bit-exact);
//! - HSV → RGB: float, truncated as OpenCV's vector path does (its scalar tail rounds);
//! - RGB ↔ Lab: OpenCV's bit-exact integer paths, L scaled to `0..=255`, a and b offset by 128.
//!
//! Each direction was checked equal to cv2 4.11 (`cvtColor`) on every input (all 2^24 RGB or Lab
//! triples, all 180 · 2^16 HSV triples); the tests keep a few of those values.

use std::sync::OnceLock;

const HSV_SHIFT: i32 = 12;

/// The tables of OpenCV's `RGB2HSV_b` (hue range 180) and the per-value terms of `HSV2RGB_b`.
pub(crate) struct HsvTables {
    pub(crate) sdiv: [i32; 256],
    pub(crate) hdiv: [i32; 256],
    /// `x · (1/255)` in f32.
    unit: [f32; 256],
    /// Per hue: the sector (0..6) and the fraction within it.
    sector: [(usize, f32); 256],
    /// `sector` split for vector gathers: the sector, and the fraction's `f32` bits.
    pub(crate) sector_index: [i32; 256],
    pub(crate) sector_fraction: [i32; 256],
}

/// The HSV tables, built once.
pub(crate) fn hsv_tables() -> &'static HsvTables {
    static TABLES: OnceLock<HsvTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let (mut sdiv, mut hdiv) = ([0; 256], [0; 256]);
        for i in 1..256 {
            sdiv[i] = ((255 << HSV_SHIFT) as f64 / i as f64).round_ties_even() as i32;
            hdiv[i] = ((180 << HSV_SHIFT) as f64 / (6.0 * i as f64)).round_ties_even() as i32;
        }
        let unit = std::array::from_fn(|i| i as f32 * (1.0f32 / 255.0));
        let sector = std::array::from_fn(|h| {
            let h = h as f32 * (6.0f32 / 180.0);
            let pre = h.trunc();
            let sector = pre - (pre * (1.0f32 / 6.0)).trunc() * 6.0;
            (sector as usize, h - pre)
        });
        let sector_index = sector.map(|(s, _)| s as i32);
        let sector_fraction = sector.map(|(_, f)| f.to_bits() as i32);
        HsvTables {
            sdiv,
            hdiv,
            unit,
            sector,
            sector_index,
            sector_fraction,
        }
    })
}

/// RGB to OpenCV's 8-bit HSV (`cv2.COLOR_RGB2HSV`).
#[inline]
pub(crate) fn rgb_to_hsv(t: &HsvTables, r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (r as i32, g as i32, b as i32);
    let v = r.max(g).max(b);
    let diff = v - r.min(g).min(b);
    let half = 1 << (HSV_SHIFT - 1);
    let s = (diff * t.sdiv[v as usize] + half) >> HSV_SHIFT;
    // OpenCV's branch-free select: g − b where v = r, else b − r + 2d where v = g, else r − g + 4d.
    let (vr, vg) = (-((v == r) as i32), -((v == g) as i32));
    let h = (vr & (g - b)) + (!vr & ((vg & (b - r + 2 * diff)) + (!vg & (r - g + 4 * diff))));
    let h = (h * t.hdiv[diff as usize] + half) >> HSV_SHIFT;
    let h = h + (-((h < 0) as i32) & 180);
    [h.clamp(0, 255) as u8, s as u8, v as u8]
}

/// Which of `[v, v(1−s), v(1−s·f), v(1−s(1−f))]` is R, G and B in each hue sector.
pub(crate) const SECTORS: [[usize; 3]; 6] = [
    [0, 3, 1],
    [2, 0, 1],
    [1, 0, 3],
    [1, 2, 0],
    [3, 1, 0],
    [0, 1, 2],
];

/// OpenCV's 8-bit HSV (H in `0..180`) to RGB (`cv2.COLOR_HSV2RGB`, vector path: float, then
/// truncated).
#[inline]
pub(crate) fn hsv_to_rgb(t: &HsvTables, h: u8, s: u8, v: u8) -> [u8; 3] {
    let (sector, f) = t.sector[h as usize];
    let (s, v) = (t.unit[s as usize], t.unit[v as usize]);
    // OpenCV's build contracts `1 − s·x` into a fused multiply-add; on f32 inputs the f64
    // product is exact, so f64 arithmetic rounds as the FMA does (checked over all inputs).
    let fma1 = |x: f32| (1.0 - s as f64 * x as f64) as f32;
    let tab = [v, v * (1.0 - s), v * fma1(f), v * fma1(1.0 - f)];
    let [r, g, b] = SECTORS[sector.min(5)];
    // `as` truncates toward zero and saturates.
    [
        (tab[r] * 255.0) as u8,
        (tab[g] * 255.0) as u8,
        (tab[b] * 255.0) as u8,
    ]
}

pub(crate) const LAB_SHIFT: i32 = 12;
pub(crate) const LAB_SHIFT2: i32 = 15;
pub(crate) const LUT_BASE: i32 = 1 << 14;
pub(crate) const MIN_AB: i32 = -8145;
pub(crate) const INV_GAMMA_SIZE: usize = 1 << 12;
const D65: [f64; 3] = [0.950456, 1.0, 1.088754];
const RGB_TO_XYZ: [f64; 9] = [
    0.412453, 0.357580, 0.180423, 0.212671, 0.715160, 0.072169, 0.019334, 0.119193, 0.950227,
];
const XYZ_TO_RGB: [f64; 9] = [
    3.240479, -1.53715, -0.498535, -0.969256, 1.875991, 0.041556, 0.055648, -0.204043, 1.057311,
];

/// The tables of OpenCV's `RGB2Lab_b` and `Lab2RGBinteger` (sRGB, D65).
pub(crate) struct LabTables {
    gamma: [u16; 256],
    cbrt: Vec<u16>,
    inv_gamma: Vec<u16>,
    y_fy: [(i32, i32); 256],
    pub(crate) ab_xz: Vec<i32>,
    pub(crate) to_xyz: [i32; 9],
    pub(crate) to_rgb: [i32; 9],
    /// The tables above widened to `i32` (and `y_fy` split) for vector gathers.
    pub(crate) wide: WideLabTables,
}

/// [`LabTables`] as `i32` tables, for `lab_in_place`'s gathers.
pub(crate) struct WideLabTables {
    pub(crate) gamma: [i32; 256],
    pub(crate) cbrt: Vec<i32>,
    pub(crate) inv_gamma: Vec<i32>,
    pub(crate) y: [i32; 256],
    pub(crate) fy: [i32; 256],
}

#[inline]
fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

fn apply_gamma(x: f32) -> f32 {
    let x = x as f64;
    (if x <= 809.0 / 20000.0 {
        x / (323.0 / 25.0)
    } else {
        ((x + 11.0 / 200.0) / (1.0 + 11.0 / 200.0)).powf(12.0 / 5.0)
    }) as f32
}

fn apply_inv_gamma(x: f32) -> f32 {
    let x = x as f64;
    (if x <= 7827.0 / 2_500_000.0 {
        x * (323.0 / 25.0)
    } else {
        x.powf(5.0 / 12.0) * (1.0 + 11.0 / 200.0) - 11.0 / 200.0
    }) as f32
}

/// OpenCV's softfloat `cbrt` (Turkowski's rational approximation on the mantissa, in f64, the
/// result's mantissa truncated to f32), for positive `x`.
fn opencv_cbrt(x: f32) -> f32 {
    if x == 0.0 {
        return 0.0;
    }
    let bits = x.to_bits();
    let ex = ((bits >> 23) & 0xff) as i32 - 127;
    let mut shx = ex % 3;
    if shx >= 0 {
        shx -= 3;
    }
    let ex = (ex - shx) / 3 - 1;
    let fr = f64::from_bits((((shx + 1023) as u64) << 52) | (((bits & 0x7f_ffff) as u64) << 29));
    let c = [
        0x4046a09e6653ba70u64,
        0x406808f46c6116e0,
        0x405dca97439cae14,
        0x402add70d2827500,
        0x3fc4f15f83f55d2d,
        0x402d9e20660edb21,
        0x4062ff15c0285815,
        0x406510d06a8112ce,
        0x4040fecbc9e2c375,
    ]
    .map(f64::from_bits);
    let num = (((c[0] * fr + c[1]) * fr + c[2]) * fr + c[3]) * fr + c[4];
    let den = (((c[5] * fr + c[6]) * fr + c[7]) * fr + c[8]) * fr + 1.0;
    let fr = num / den;
    let frac = ((fr.to_bits() & ((1u64 << 52) - 1)) >> 29) as u32;
    f32::from_bits((((ex + 127) as u32) << 23) | frac)
}

/// The Lab tables, built once (as OpenCV's `initLabTabs`, in f32 where OpenCV uses softfloat).
pub(crate) fn lab_tables() -> &'static LabTables {
    static TABLES: OnceLock<LabTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let round = |v: f32| v.round_ties_even() as i32;
        let mut gamma = [0u16; 256];
        for (i, g) in gamma.iter_mut().enumerate() {
            *g = round(2040.0f32 * apply_gamma(i as f32 / 255.0)) as u16;
        }
        let inv_gamma: Vec<u16> = (0..INV_GAMMA_SIZE)
            .map(|i| round(255.0f32 * apply_inv_gamma((1.0 / 4096.0f32) * i as f32)) as u16)
            .collect();
        let (thresh, scale, bias) = (216.0f32 / 24389.0, 841.0f32 / 108.0, 16.0f32 / 116.0);
        let step = 1.0f32 / (255.0 * 8.0);
        let cbrt: Vec<u16> = (0..3072)
            .map(|i| {
                let x = step * i as f32;
                let f = if x < thresh {
                    x.mul_add(scale, bias)
                } else {
                    opencv_cbrt(x)
                };
                round(32768.0f32 * f) as u16
            })
            .collect();
        let mut y_fy = [(0, 0); 256];
        for (i, e) in y_fy.iter_mut().enumerate() {
            let i = i as i32;
            *e = if i <= 20 {
                let y = round((i * LUT_BASE * 20 * 9) as f32 / (17 * 29 * 29 * 29) as f32);
                let fy =
                    LUT_BASE as f32 * (16.0f32 / 116.0 + (i * 5) as f32 / (3 * 17 * 29) as f32);
                (y, round(fy))
            } else {
                let fy = (i * 100 * LUT_BASE) as f32 / (255 * 116) as f32
                    + (16 * LUT_BASE) as f32 / 116.0;
                (
                    round(fy * fy * fy / (LUT_BASE * LUT_BASE) as f32),
                    round(fy),
                )
            };
        }
        let ab_xz = (MIN_AB..LUT_BASE * 9 / 4 + MIN_AB)
            .map(|i| {
                if i <= 3390 {
                    i * 108 / 841 - LUT_BASE * 16 / 116 * 108 / 841
                } else {
                    (i as i64 * i as i64 / LUT_BASE as i64 * i as i64 / LUT_BASE as i64) as i32
                }
            })
            .collect();
        let (mut to_xyz, mut to_rgb) = ([0; 9], [0; 9]);
        for row in 0..3 {
            for col in 0..3 {
                to_xyz[row * 3 + col] =
                    (4096.0 * RGB_TO_XYZ[row * 3 + col] / D65[row]).round_ties_even() as i32;
                to_rgb[row * 3 + col] =
                    (4096.0 * XYZ_TO_RGB[row * 3 + col] * D65[col]).round_ties_even() as i32;
            }
        }
        let wide = WideLabTables {
            gamma: gamma.map(i32::from),
            cbrt: cbrt.iter().map(|&v| i32::from(v)).collect(),
            inv_gamma: inv_gamma.iter().map(|&v| i32::from(v)).collect(),
            y: y_fy.map(|(y, _)| y),
            fy: y_fy.map(|(_, fy)| fy),
        };
        LabTables {
            gamma,
            cbrt,
            inv_gamma,
            y_fy,
            ab_xz,
            to_xyz,
            to_rgb,
            wide,
        }
    })
}

/// RGB to OpenCV's 8-bit Lab (`cv2.COLOR_RGB2LAB`).
#[inline]
pub(crate) fn rgb_to_lab(t: &LabTables, r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (
        t.gamma[r as usize] as i32,
        t.gamma[g as usize] as i32,
        t.gamma[b as usize] as i32,
    );
    let c = &t.to_xyz;
    let f = |k: usize| {
        let i = descale(r * c[k] + g * c[k + 1] + b * c[k + 2], LAB_SHIFT);
        t.cbrt[i.clamp(0, 3071) as usize] as i32
    };
    let (fx, fy, fz) = (f(0), f(3), f(6));
    let l = descale(296 * fy - 1_336_934, LAB_SHIFT2);
    let a = descale(500 * (fx - fy) + (128 << LAB_SHIFT2), LAB_SHIFT2);
    let bb = descale(200 * (fy - fz) + (128 << LAB_SHIFT2), LAB_SHIFT2);
    [
        l.clamp(0, 255) as u8,
        a.clamp(0, 255) as u8,
        bb.clamp(0, 255) as u8,
    ]
}

/// OpenCV's 8-bit Lab to RGB (`cv2.COLOR_LAB2RGB`).
#[inline]
pub(crate) fn lab_to_rgb(t: &LabTables, l: u8, a: u8, b: u8) -> [u8; 3] {
    let (y, ify) = t.y_fy[l as usize];
    let adiv = ((5 * a as i32 * 53687 + (1 << 7)) >> 13) - 128 * LUT_BASE / 500;
    let bdiv = ((b as i32 * 41943 + (1 << 4)) >> 9) - 128 * LUT_BASE / 200 + 1;
    let x = t.ab_xz[(ify + adiv - MIN_AB) as usize];
    let z = t.ab_xz[(ify - bdiv - MIN_AB) as usize];
    let c = &t.to_rgb;
    let ch = |k: usize| {
        let v = descale(c[k] * x + c[k + 1] * y + c[k + 2] * z, 14);
        t.inv_gamma[v.clamp(0, INV_GAMMA_SIZE as i32 - 1) as usize] as u8
    };
    [ch(0), ch(3), ch(6)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_stays_grey_through_hsv_and_lab() {
        let (h, l) = (hsv_tables(), lab_tables());
        for v in [0u8, 1, 77, 128, 254, 255] {
            let hsv = rgb_to_hsv(h, v, v, v);
            assert_eq!(hsv, [0, 0, v]);
            assert_eq!(hsv_to_rgb(h, hsv[0], hsv[1], hsv[2]), [v, v, v]);
            let lab = rgb_to_lab(l, v, v, v);
            assert_eq!((lab[1], lab[2]), (128, 128), "{v}");
            let back = lab_to_rgb(l, lab[0], lab[1], lab[2]);
            assert!(back.iter().all(|&c| c.abs_diff(v) <= 1), "{v}: {back:?}");
        }
        assert_eq!(rgb_to_lab(l, 255, 255, 255)[0], 255);
    }

    #[test]
    fn primaries_match_opencv() {
        // cv2.cvtColor(np.uint8([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]), ...)
        let (h, l) = (hsv_tables(), lab_tables());
        assert_eq!(rgb_to_hsv(h, 255, 0, 0), [0, 255, 255]);
        assert_eq!(rgb_to_hsv(h, 0, 255, 0), [60, 255, 255]);
        assert_eq!(rgb_to_hsv(h, 0, 0, 255), [120, 255, 255]);
        assert_eq!(rgb_to_lab(l, 255, 0, 0), [136, 208, 195]);
        assert_eq!(rgb_to_lab(l, 0, 255, 0), [224, 42, 211]);
        assert_eq!(rgb_to_lab(l, 0, 0, 255), [82, 207, 20]);
        // OpenCV's truncating cbrt (a round-to-nearest table gives L = 120 here).
        assert_eq!(rgb_to_lab(l, 0, 98, 254), [119, 165, 45]);
        assert_eq!(rgb_to_lab(l, 250, 3, 180), [142, 216, 102]);
        assert_eq!(rgb_to_hsv(h, 250, 3, 180), [159, 252, 250]);
        // Its fused multiply-add (a plain f32 product gives G = 55 here).
        assert_eq!(hsv_to_rgb(h, 1, 90, 85), [85, 56, 55]);
        assert_eq!(hsv_to_rgb(h, 100, 200, 50), [10, 36, 50]);
        assert_eq!(hsv_to_rgb(h, 179, 255, 255), [255, 0, 8]);
        assert_eq!(lab_to_rgb(l, 120, 150, 60), [12, 107, 227]);
        assert_eq!(lab_to_rgb(l, 30, 100, 200), [32, 38, 0]);
        assert_eq!(lab_to_rgb(l, 200, 255, 255), [255, 0, 0]);
    }
}

//! Horizontal and vertical flips (imgaug's `Fliplr`/`Flipud`, Albumentations'
//! `HorizontalFlip`/`VerticalFlip`).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::param::check_probability;
use crate::{AugRng, BBox, Image, ImageBuf, Keypoint, Op, Pixel, Result, Sample, with_image};

/// Mirrors an image left–right in place (the sample owns its image: no allocation).
pub fn flip_h<P: Pixel>(img: &mut ImageBuf<P>) {
    let (w, c) = (img.width(), img.channels());
    if let Some(bytes) = P::as_u8_mut(img.data_mut())
        && c == 3
    {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx512_vbmi() {
            for row in bytes.chunks_exact_mut(w * 3) {
                // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked above.
                let done = unsafe { vbmi::mirror_rgb8_ends(row) };
                let n = row.len() / 3;
                mirror_rgb8(&mut row[done * 3..(n - done) * 3]);
            }
            return;
        }
        for row in bytes.chunks_exact_mut(w * 3) {
            mirror_rgb8(row);
        }
        return;
    }
    for row in img.data_mut().chunks_exact_mut(w * c) {
        match c {
            1 => mirror::<P, 1>(row),
            3 => mirror::<P, 3>(row),
            _ => mirror::<P, 4>(row),
        }
    }
}

/// Byte `j` of a reversed block of 16 RGB pixels comes from byte `REVERSE_16[j]`.
const REVERSE_16: [usize; 48] = {
    let mut p = [0; 48];
    let mut j = 0;
    while j < 48 {
        p[j] = (15 - j / 3) * 3 + j % 3;
        j += 1;
    }
    p
};

crate::simd::kernel! {
    /// Mirrors one row of 3-byte pixels: blocks of 16 pixels from both ends are swapped and
    /// reversed through a fixed byte permutation, which SSSE3 does with byte shuffles (3–4× the
    /// per-pixel swap, measured on 224-px rows). Written by hand because no maintained crate
    /// flips interleaved RGB in place.
    fn mirror_rgb8(row: &mut [u8]) ["ssse3"] {
        let n = row.len() / 3;
        let (mut lo, mut hi) = (0, n);
        while hi - lo >= 32 {
            let (head, tail) = row.split_at_mut((hi - 16) * 3);
            let a: &mut [u8; 48] = (&mut head[lo * 3..lo * 3 + 48]).try_into().expect("48 bytes");
            let b: &mut [u8; 48] = (&mut tail[..48]).try_into().expect("48 bytes");
            let ra: [u8; 48] = std::array::from_fn(|j| a[REVERSE_16[j]]);
            *a = std::array::from_fn(|j| b[REVERSE_16[j]]);
            *b = ra;
            lo += 16;
            hi -= 16;
        }
        mirror::<u8, 3>(&mut row[lo * 3..hi * 3]);
    }
}

/// Rows of 3-byte pixels mirrored 64 pixels (three vectors) at a time from both ends with
/// AVX-512 VBMI's byte permutes, which cross the whole 64-byte register, where SSSE3's
/// shuffles stay within 16 bytes.
#[cfg(target_arch = "x86_64")]
mod vbmi {
    use std::arch::x86_64::*;

    /// Byte `o` of a reversed block of 64 RGB pixels comes from byte `source(o)`, minus `base`
    /// (the first byte of the two source vectors the permute reads).
    const fn indices(first: usize, base: usize) -> [u8; 64] {
        let mut idx = [0u8; 64];
        let mut j = 0;
        while j < 64 {
            let o = first + j;
            idx[j] = ((63 - o / 3) * 3 + o % 3 - base) as u8;
            j += 1;
        }
        idx
    }
    // Output vector k reads the 128 source bytes from `BASE[k]` (vector 1 needs bytes 63..=128).
    const BASE: [usize; 3] = [64, 32, 0];
    const IDX: [[u8; 64]; 3] = [
        indices(0, BASE[0]),
        indices(64, BASE[1]),
        indices(128, BASE[2]),
    ];

    /// The 64 pixels at `at` (192 bytes) in reverse order.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn reversed(at: *const u8) -> [__m512i; 3] {
        std::array::from_fn(|k| {
            // SAFETY: the caller guarantees 192 readable bytes at `at`; BASE[k] + 128 ≤ 192, and
            // the index tables are 64 bytes each.
            unsafe {
                let a = _mm512_loadu_si512(at.add(BASE[k]).cast());
                let b = _mm512_loadu_si512(at.add(BASE[k] + 64).cast());
                let idx = _mm512_loadu_si512(IDX[k].as_ptr().cast());
                _mm512_permutex2var_epi8(a, idx, b)
            }
        })
    }

    /// Mirrors the outer blocks of 64 pixels of `row` while at least 128 pixels remain between
    /// them; returns how many pixels were done at each end.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn mirror_rgb8_ends(row: &mut [u8]) -> usize {
        let n = row.len() / 3;
        let (mut lo, mut hi) = (0, n);
        let p = row.as_mut_ptr();
        while hi - lo >= 128 {
            // SAFETY: both blocks lie inside the row (lo + 64 ≤ hi − 64 ≤ n) and do not overlap.
            unsafe {
                let (left, right) = (p.add(lo * 3), p.add((hi - 64) * 3));
                let (l, r) = (reversed(left), reversed(right));
                for k in 0..3 {
                    _mm512_storeu_si512(left.add(64 * k).cast(), r[k]);
                    _mm512_storeu_si512(right.add(64 * k).cast(), l[k]);
                }
            }
            lo += 64;
            hi -= 64;
        }
        lo
    }
}

/// Swaps the pixels of a row end for end (fixed-size swaps the compiler can unroll).
fn mirror<P: Copy, const C: usize>(row: &mut [P]) {
    let half = row.len() / C / 2 * C;
    let (left, rest) = row.split_at_mut(half);
    let right_start = rest.len() - half;
    let right = &mut rest[right_start..];
    for (l, r) in left.chunks_exact_mut(C).zip(right.rchunks_exact_mut(C)) {
        let l: &mut [P; C] = l.try_into().expect("C values");
        let r: &mut [P; C] = r.try_into().expect("C values");
        std::mem::swap(l, r);
    }
}

/// Mirrors an image top–bottom: the rows copied in reverse order into a new buffer (one
/// `memcpy` each), the old one freed. Faster than swapping row pairs in place through a scratch
/// row (measured at 512², `benches/augment/PROFILE.md`): the in-place swap writes every line of
/// the input back, while the new buffer is the block the previous image freed, still in cache.
pub fn flip_v<P: Pixel>(img: &mut ImageBuf<P>) {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let row = w * c;
    if row == 0 {
        return;
    }
    let mut out = Vec::with_capacity(row * h);
    for r in img.data().rchunks_exact(row) {
        out.extend_from_slice(r);
    }
    *img = ImageBuf::with_data(w, h, c, out);
}

fn flip_image(img: &mut Image, horizontal: bool) {
    if horizontal {
        with_image!(img, b => flip_h(b))
    } else {
        with_image!(img, b => flip_v(b))
    }
}

fn flip_sample(mut s: Sample, horizontal: bool) -> Sample {
    let (w, h) = (s.image.width() as f32, s.image.height() as f32);
    flip_image(&mut s.image, horizontal);
    for m in &mut s.masks {
        flip_image(m, horizontal);
    }
    for m in &mut s.heatmaps {
        if horizontal { flip_h(m) } else { flip_v(m) }
    }
    for b in &mut s.boxes {
        *b = if horizontal {
            BBox {
                x1: w - b.x2,
                x2: w - b.x1,
                ..*b
            }
        } else {
            BBox {
                y1: h - b.y2,
                y2: h - b.y1,
                ..*b
            }
        };
    }
    for k in &mut s.keypoints {
        *k = if horizontal {
            Keypoint { x: w - k.x, ..*k }
        } else {
            Keypoint { y: h - k.y, ..*k }
        };
    }
    s
}

/// Flips left–right with probability `p` (imgaug's `Fliplr(p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fliplr {
    /// Probability of flipping.
    #[serde(default = "one")]
    pub p: f64,
}

/// Flips top–bottom with probability `p` (imgaug's `Flipud(p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flipud {
    /// Probability of flipping.
    #[serde(default = "one")]
    pub p: f64,
}

fn one() -> f64 {
    1.0
}

impl Op for Fliplr {
    const NAME: &'static str = "fliplr";
    type Params = bool;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> bool {
        rng.random_bool(self.p)
    }
    fn apply(&self, flip: &bool, s: Sample) -> Result<Sample> {
        Ok(if *flip { flip_sample(s, true) } else { s })
    }
}

impl Op for Flipud {
    const NAME: &'static str = "flipud";
    type Params = bool;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> bool {
        rng.random_bool(self.p)
    }
    fn apply(&self, flip: &bool, s: Sample) -> Result<Sample> {
        Ok(if *flip { flip_sample(s, false) } else { s })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, c: usize) -> ImageBuf<u8> {
        let data = (0..w * h * c).map(|i| (i * 37 % 251) as u8).collect();
        ImageBuf::new(w, h, c, data).unwrap()
    }

    #[test]
    fn in_place_flips_match_a_pixel_by_pixel_mirror_at_every_width() {
        // Widths around the 16-pixel blocks of the SSSE3 kernel and the 64-pixel blocks of the
        // VBMI one, for 1, 3 and 4 channels.
        for c in [1, 3, 4] {
            for w in (1..70).chain([127, 128, 129, 191, 192, 193, 223, 224, 225, 256, 300, 512]) {
                let img = ramp(w, 3, c);
                let mut h = img.clone();
                flip_h(&mut h);
                let mut v = img.clone();
                flip_v(&mut v);
                for y in 0..3 {
                    for x in 0..w {
                        assert_eq!(h.pixel(x, y), img.pixel(w - 1 - x, y), "w {w} c {c}");
                        assert_eq!(v.pixel(x, y), img.pixel(x, 2 - y), "w {w} c {c}");
                    }
                }
            }
        }
    }
}

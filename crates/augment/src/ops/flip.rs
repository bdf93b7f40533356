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
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3") {
            // Each row reversed into a scratch row read front to back, then copied back: both
            // passes over the row go forwards, which the prefetchers follow (mirroring from
            // both ends at once stalled on the loads of the backward end: 0.38–0.56× OpenCV at
            // 512² on a CPU without AVX-512).
            let mut scratch = vec![0u8; w * 3];
            for row in bytes.chunks_exact_mut(w * 3) {
                // SAFETY: the CPU has SSSE3, checked above; the rows are equally long.
                unsafe { ssse3::mirror_rgb8_into(row, &mut scratch) };
                row.copy_from_slice(&scratch);
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

/// Mirrors one row of 3-byte pixels: blocks of 16 pixels (three 16-byte vectors) from both
/// ends are swapped and reversed by SSSE3 byte shuffles, the middle pixel by pixel. Written
/// by hand because no maintained crate flips interleaved RGB in place (and the compiler kept
/// a byte-indexed permutation scalar: 0.56× OpenCV at 512² on a CPU without AVX-512).
fn mirror_rgb8(row: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3, checked on the line above.
        let done = unsafe { ssse3::mirror_rgb8_ends(row) };
        let n = row.len() / 3;
        return mirror::<u8, 3>(&mut row[done * 3..(n - done) * 3]);
    }
    mirror::<u8, 3>(row);
}

#[cfg(target_arch = "x86_64")]
mod ssse3 {
    use std::arch::x86_64::*;

    /// `SHUFFLE[k][m]`: the bytes of output vector `k` of a reversed 16-pixel block that come
    /// from input vector `m` (byte `j` of the block comes from pixel `15 − j/3`, channel
    /// `j % 3`), −1 elsewhere.
    const SHUFFLE: [[[i8; 16]; 3]; 3] = {
        let mut t = [[[-1i8; 16]; 3]; 3];
        let mut j = 0;
        while j < 48 {
            let from = (15 - j / 3) * 3 + j % 3;
            t[j / 16][from / 16][j % 16] = (from % 16) as i8;
            j += 1;
        }
        t
    };

    /// The 16 pixels at `at` (48 bytes) in reverse order.
    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn reversed(at: *const u8) -> [__m128i; 3] {
        // SAFETY: the caller guarantees 48 readable bytes at `at`; the tables are 16 bytes.
        unsafe {
            let v: [__m128i; 3] = std::array::from_fn(|m| _mm_loadu_si128(at.add(16 * m).cast()));
            std::array::from_fn(|k| {
                let part = |m: usize| {
                    _mm_shuffle_epi8(v[m], _mm_loadu_si128(SHUFFLE[k][m].as_ptr().cast()))
                };
                _mm_or_si128(_mm_or_si128(part(0), part(1)), part(2))
            })
        }
    }

    /// `dst` = the pixels of `src` (3 bytes each, the same length) in reverse order.
    ///
    /// # Safety
    /// The CPU must have SSSE3.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn mirror_rgb8_into(src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "rows of one length");
        let n = src.len() / 3;
        let blocks = n / 16;
        for b in 0..blocks {
            // SAFETY: block b is 48 bytes inside `src`; its place at the end of `dst` too.
            unsafe {
                let r = reversed(src.as_ptr().add(48 * b));
                let at = dst.as_mut_ptr().add((n - 16 * (b + 1)) * 3);
                for (k, v) in r.iter().enumerate() {
                    _mm_storeu_si128(at.add(16 * k).cast(), *v);
                }
            }
        }
        // The last pixels of `src` (fewer than 16) open `dst`.
        let rest = n - 16 * blocks;
        for i in 0..rest {
            let from = (n - 1 - i) * 3;
            dst[i * 3..i * 3 + 3].copy_from_slice(&src[from..from + 3]);
        }
    }

    /// Mirrors the outer blocks of 16 pixels of `row` while at least 32 pixels remain between
    /// them; returns how many pixels were done at each end.
    ///
    /// # Safety
    /// The CPU must have SSSE3.
    #[target_feature(enable = "ssse3")]
    pub(super) unsafe fn mirror_rgb8_ends(row: &mut [u8]) -> usize {
        let n = row.len() / 3;
        let (mut lo, mut hi) = (0, n);
        let p = row.as_mut_ptr();
        while hi - lo >= 32 {
            // SAFETY: both blocks lie inside the row (lo + 16 ≤ hi − 16 ≤ n) and do not overlap.
            unsafe {
                let (left, right) = (p.add(lo * 3), p.add((hi - 16) * 3));
                let (l, r) = (reversed(left), reversed(right));
                for k in 0..3 {
                    _mm_storeu_si128(left.add(16 * k).cast(), r[k]);
                    _mm_storeu_si128(right.add(16 * k).cast(), l[k]);
                }
            }
            lo += 16;
            hi -= 16;
        }
        lo
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

/// Mirrors an image top–bottom: the rows copied in order into their mirrored places in a new
/// buffer (one `memcpy` each), the old one freed. Faster than swapping row pairs in place
/// through a scratch row (measured at 512², `benches/augment/PROFILE.md`): the in-place swap
/// writes every line of the input back, while the new buffer is the block the previous image
/// freed, still in cache; reading the input front to back lets the prefetchers run ahead.
pub fn flip_v<P: Pixel>(img: &mut ImageBuf<P>) {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let row = w * c;
    if row == 0 {
        return;
    }
    let mut out: Vec<P> = Vec::with_capacity(row * h);
    let dst = out.as_mut_ptr();
    for (y, r) in img.data().chunks_exact(row).enumerate() {
        // SAFETY: row y goes to row h − 1 − y of the `row · h` reserved values; the rows do
        // not overlap and together cover the whole buffer.
        unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), dst.add((h - 1 - y) * row), row) };
    }
    // SAFETY: every one of the `row · h` values was written above.
    unsafe { out.set_len(row * h) };
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

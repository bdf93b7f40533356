//! `cv2.blur`: box filters from exact window sums (integer sums streamed through a ring of row
//! sums, 16-bit where they fit), rounded as OpenCV rounds for each pixel type.
//!
//! Hand-written: OpenCV's tie rounding for `u8` (measured, see [`FilterPixel::box_blur`]) is
//! not what any maintained crate does.

use super::filter::{F32_ROUND, FilterPixel, pad_row, reflect101};
use crate::{ImageBuf, Pixel};

/// `S / d` rounded half up for a window sum `S ≤ 255·d` of `d ≤ 256` `u8` pixels, `inv` =
/// `f32(1/d)`: q = (S + d/2)/d + 1e-4 has a fractional part in (0, 1) clear of the `f32`
/// error (it is 0 or ≥ 1/d exactly), so rounding q − 1/2 to nearest gives its floor.
#[inline(always)]
pub(crate) fn half_up_mean(s: u32, d: u32, inv: f32) -> u8 {
    let q = (s + d / 2) as i32 as f32 * inv + (1e-4 - 0.5);
    (q + F32_ROUND).to_bits() as u8
}

/// `cv2.blur(img, (kw, kh))`: the mean over a `kw × kh` window (anchor `(kw/2, kh/2)`),
/// `BORDER_REFLECT_101`, from exact window sums, rounded as OpenCV rounds for the type.
pub fn box_filter<P: FilterPixel>(img: &ImageBuf<P>, kw: usize, kh: usize) -> ImageBuf<P> {
    let (kw, kh) = (kw.max(1), kh.max(1));
    if kw == 1 && kh == 1 {
        return img.clone();
    }
    P::box_blur(img, kw, kh)
}

/// An integer accumulator for box sums (wrapping: the exact sums fit, so the wrapped
/// arithmetic on the way is exact too).
trait BoxSum: Copy + Default + Send + Sync {
    fn of(v: u32) -> Self;
    fn get(self) -> u32;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
}

impl BoxSum for u16 {
    #[inline(always)]
    fn of(v: u32) -> Self {
        v as u16
    }
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

impl BoxSum for u32 {
    #[inline(always)]
    fn of(v: u32) -> Self {
        v
    }
    #[inline(always)]
    fn get(self) -> u32 {
        self
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.wrapping_sub(o)
    }
}

/// Sums of `kw` consecutive pixels along a padded row: direct for narrow windows (vectorised),
/// running otherwise.
#[inline(always)]
fn window_sums<A: BoxSum>(padded: &[A], kw: usize, c: usize, out: &mut [A]) {
    let n = out.len();
    if kw <= 16 {
        out.copy_from_slice(&padded[..n]);
        for j in 1..kw {
            for (o, p) in out.iter_mut().zip(&padded[j * c..j * c + n]) {
                *o = o.add(*p);
            }
        }
    } else {
        for ch in 0..c {
            out[ch] = (0..kw).fold(A::default(), |a, j| a.add(padded[j * c + ch]));
        }
        for i in c..n {
            out[i] = out[i - c].add(padded[i + (kw - 1) * c]).sub(padded[i - c]);
        }
    }
}

/// The window sums of one source row (`kw` wide, `ax` left of the anchor) into `out`.
#[inline(always)]
fn row_sums<P: Pixel + Into<u32>, A: BoxSum>(
    row: &[P],
    c: usize,
    (ax, kw): (usize, usize),
    padded: &mut [A],
    out: &mut [A],
) {
    pad_row(row, c, ax, kw - 1 - ax, padded, |v| A::of(v.into()));
    window_sums(padded, kw, c, out);
}

/// Box filter over integer pixels, streaming: the row sums of the `kh` rows in the window sit
/// in a ring; the column sums move down by adding the entering row and removing the leaving
/// one; `mean(S)` per value. `A` must hold `255·kw·kh` (`u8`) or `65535·kw·kh` (`u16`).
#[inline(always)]
fn box_int_body<P: FilterPixel + Into<u32>, A: BoxSum>(
    img: &ImageBuf<P>,
    kw: usize,
    kh: usize,
    mean: &impl Fn(u32) -> P,
) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let n = w * c;
    let (ax, ay) = (kw / 2, kh / 2);
    let mut padded = vec![A::default(); (w + kw - 1) * c];
    let source = |t: usize| reflect101(t as isize - ay as isize, h);
    let mut ring = vec![A::default(); kh * n];
    let mut col = vec![A::default(); n];
    for (t, slot) in ring.chunks_exact_mut(n).enumerate() {
        row_sums(img.row(source(t)), c, (ax, kw), &mut padded, slot);
        for (a, s) in col.iter_mut().zip(slot.iter()) {
            *a = a.add(*s);
        }
    }
    let mut entering = vec![A::default(); n];
    let mut data = Vec::with_capacity(h * n);
    for y in 0..h {
        if y > 0 {
            // Window position y - 1 leaves, y - 1 + kh enters: the same ring slot.
            let t = y - 1 + kh;
            row_sums(img.row(source(t)), c, (ax, kw), &mut padded, &mut entering);
            let slot = &mut ring[(t % kh) * n..(t % kh + 1) * n];
            for ((a, old), new) in col.iter_mut().zip(slot.iter_mut()).zip(&entering) {
                *a = a.sub(*old).add(*new);
                *old = *new;
            }
        }
        data.extend(col.iter().map(|s| mean(s.get())));
    }
    ImageBuf::with_data(w, h, c, data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn box_int_avx2<P: FilterPixel + Into<u32>, A: BoxSum>(
    img: &ImageBuf<P>,
    kw: usize,
    kh: usize,
    mean: &impl Fn(u32) -> P,
) -> ImageBuf<P> {
    box_int_body::<P, A>(img, kw, kh, mean)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn box_int_avx512<P: FilterPixel + Into<u32>, A: BoxSum>(
    img: &ImageBuf<P>,
    kw: usize,
    kh: usize,
    mean: &impl Fn(u32) -> P,
) -> ImageBuf<P> {
    box_int_body::<P, A>(img, kw, kh, mean)
}

/// [`box_int_body`] with 16-bit sums where they fit, and AVX-512 or AVX2 where the CPU has it.
pub(crate) fn box_int<P: FilterPixel + Into<u32>>(
    img: &ImageBuf<P>,
    kw: usize,
    kh: usize,
    mean: impl Fn(u32) -> P,
) -> ImageBuf<P> {
    if P::MAX as usize * kw * kh <= u16::MAX as usize {
        box_int_dispatch::<P, u16>(img, kw, kh, &mean)
    } else {
        box_int_dispatch::<P, u32>(img, kw, kh, &mean)
    }
}

/// [`box_int_body`] compiled for the best instruction set the CPU has.
fn box_int_dispatch<P: FilterPixel + Into<u32>, A: BoxSum>(
    img: &ImageBuf<P>,
    kw: usize,
    kh: usize,
    mean: &impl Fn(u32) -> P,
) -> ImageBuf<P> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU supports AVX-512 BW, checked just above.
        return unsafe { box_int_avx512::<P, A>(img, kw, kh, mean) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { box_int_avx2::<P, A>(img, kw, kh, mean) };
    }
    box_int_body::<P, A>(img, kw, kh, mean)
}

/// Box filter in `f64` (OpenCV's sums for float images): running sums, `S / (kw·kh)`.
pub(crate) fn box_float<P: FilterPixel>(img: &ImageBuf<P>, kw: usize, kh: usize) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let n = w * c;
    let (ax, ay) = (kw / 2, kh / 2);
    let mut sums = vec![0f64; h * n];
    let mut padded = vec![0f64; (w + kw - 1) * c];
    for (y, out) in sums.chunks_exact_mut(n).enumerate() {
        pad_row(img.row(y), c, ax, kw - 1 - ax, &mut padded, |v| {
            v.to_f32() as f64
        });
        for ch in 0..c {
            out[ch] = (0..kw).map(|j| padded[j * c + ch]).sum();
        }
        for i in c..n {
            out[i] = out[i - c] + padded[i + (kw - 1) * c] - padded[i - c];
        }
    }
    let scale = 1.0 / (kw * kh) as f64;
    let mut col = vec![0f64; n];
    for i in 0..kh {
        let sy = reflect101(i as isize - ay as isize, h) * n;
        col.iter_mut()
            .zip(&sums[sy..sy + n])
            .for_each(|(a, s)| *a += s);
    }
    let mut data = Vec::with_capacity(h * n);
    for y in 0..h {
        if y > 0 {
            let add = reflect101((y + kh - 1) as isize - ay as isize, h) * n;
            let sub = reflect101(y as isize - 1 - ay as isize, h) * n;
            let (add, sub) = (&sums[add..add + n], &sums[sub..sub + n]);
            for ((a, p), m) in col.iter_mut().zip(add).zip(sub) {
                *a += p - m;
            }
        }
        data.extend(col.iter().map(|&s| P::store64(s * scale)));
    }
    ImageBuf::with_data(w, h, c, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, c: usize) -> ImageBuf<u8> {
        let data = (0..w * h * c).map(|i| ((i * 37) % 251) as u8).collect();
        ImageBuf::new(w, h, c, data).unwrap()
    }

    #[test]
    fn box_filter_matches_a_direct_window_mean() {
        let img = ramp(11, 7, 1);
        for (kw, kh) in [(3, 3), (5, 3), (5, 5), (9, 9)] {
            let fast = box_filter(&img, kw, kh);
            for y in 0..7isize {
                for x in 0..11isize {
                    let mut s = 0u32;
                    for dy in 0..kh as isize {
                        for dx in 0..kw as isize {
                            let sy = reflect101(y + dy - kh as isize / 2, 7);
                            let sx = reflect101(x + dx - kw as isize / 2, 11);
                            s += img.pixel(sx, sy)[0] as u32;
                        }
                    }
                    let want = u8::store64(s as f64 / (kw * kh) as f64); // odd areas: no ties
                    assert_eq!(fast.pixel(x as usize, y as usize)[0], want, "{kw}×{kh}");
                }
            }
        }
    }

    #[test]
    fn the_float_half_up_mean_is_exact_for_every_u8_window_sum() {
        for d in (2..=256u32).filter(|d| !d.is_power_of_two()) {
            let inv = (1.0 / d as f64) as f32;
            for s in 0..=255 * d {
                assert_eq!(
                    half_up_mean(s, d, inv) as u32,
                    (2 * s + d) / (2 * d),
                    "{s}/{d}"
                );
            }
        }
    }

    #[test]
    fn box_filter_rounds_ties_like_opencv() {
        // cv2.blur(np.array([[0,1,0],[0,0,0],[0,0,0]], np.uint8), (2, 2)): 1/4 becomes 1.
        let img = ImageBuf::new(3, 3, 1, vec![0u8, 1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(box_filter(&img, 2, 2).data(), [1, 1, 1, 1, 1, 1, 0, 0, 0]);
        // cv2.blur of 6 rows [0, 0, 0, 0, 3, 0, 0, 0] with (6, 6): 18/36 rounds half up.
        let row = [0u8, 0, 0, 0, 3, 0, 0, 0];
        let img = ImageBuf::new(8, 6, 1, row.repeat(6)).unwrap();
        assert_eq!(box_filter(&img, 6, 6).row(0), [0, 0, 1, 1, 1, 1, 1, 1]);
    }
}

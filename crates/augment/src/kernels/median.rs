//! `cv2.medianBlur`: the median over a `k × k` window per channel, border replicated. 3 uses
//! sorted columns, 5 a median network on 32 values at a time (vectorised min/max); larger
//! windows use a sliding histogram (`u8`) or selection (`u16`, `f32`).
//!
//! Hand-written: no maintained crate offers a median filter over HWC buffers of u8/u16/f32.

use super::filter::{FilterPixel, replicate};
use crate::ImageBuf;

/// Compare-exchanges on arrays of wires: `B(a, b)` leaves the minimum on wire `a` and the
/// maximum on wire `b`; `L`/`H` keep only the minimum/maximum where the other is never read
/// again. Expanded inline, so the whole network compiles to straight-line min/max.
macro_rules! network {
    ($w:ident; $($kind:ident($a:literal, $b:literal),)*) => {
        $( network!(@ $kind $w, $a, $b); )*
    };
    (@ B $w:ident, $a:literal, $b:literal) => {{
        let (x, y) = ($w[$a], $w[$b]);
        $w[$a] = std::array::from_fn(|l| x[l].lo(y[l]));
        $w[$b] = std::array::from_fn(|l| x[l].hi(y[l]));
    }};
    (@ L $w:ident, $a:literal, $b:literal) => {{
        let (x, y) = ($w[$a], $w[$b]);
        $w[$a] = std::array::from_fn(|l| x[l].lo(y[l]));
    }};
    (@ H $w:ident, $a:literal, $b:literal) => {{
        let (x, y) = ($w[$a], $w[$b]);
        $w[$b] = std::array::from_fn(|l| x[l].hi(y[l]));
    }};
}

/// The median of 25 onto wire 12: Batcher's odd-even merge sort of 32 wires with the 7
/// padding wires (+∞) removed, pruned backwards from wire 12 to 113 exchanges (checked on all
/// 2^25 0/1 inputs, the 0-1 principle, when it was derived).
#[inline(always)]
#[rustfmt::skip]
fn median25<P: FilterPixel>(w: &mut [[P; CHUNK]; 25]) {
    network!(w;
    B(0, 1), B(2, 3), B(4, 5), B(6, 7), B(8, 9), B(10, 11), B(12, 13), B(14, 15), B(16, 17),
    B(18, 19), B(20, 21), B(22, 23), B(0, 2), B(1, 3), B(4, 6), B(5, 7), B(8, 10), B(9, 11),
    B(12, 14), B(13, 15), B(16, 18), B(17, 19), B(20, 22), B(21, 23), B(1, 2), B(5, 6),
    B(9, 10), B(13, 14), B(17, 18), B(21, 22), B(0, 4), B(1, 5), B(2, 6), B(3, 7), B(8, 12),
    B(9, 13), B(10, 14), B(11, 15), B(16, 20), B(17, 21), B(18, 22), B(19, 23), B(2, 4),
    B(3, 5), B(10, 12), B(11, 13), B(18, 20), B(19, 21), B(1, 2), B(3, 4), B(5, 6), B(9, 10),
    B(11, 12), B(13, 14), B(17, 18), B(19, 20), B(21, 22), B(0, 8), B(1, 9), B(2, 10), B(3, 11),
    B(4, 12), B(5, 13), B(6, 14), L(7, 15), B(16, 24), B(4, 8), B(5, 9), B(6, 10), B(7, 11),
    B(20, 24), B(2, 4), B(3, 5), B(6, 8), B(7, 9), B(10, 12), B(11, 13), B(18, 20), B(19, 21),
    B(22, 24), B(1, 2), B(3, 4), B(5, 6), B(7, 8), B(9, 10), B(11, 12), L(13, 14), B(17, 18),
    B(19, 20), B(21, 22), B(23, 24), H(0, 16), H(1, 17), H(2, 18), H(3, 19), H(4, 20), H(5, 21),
    L(6, 22), L(7, 23), L(8, 24), H(8, 16), H(9, 17), L(10, 18), L(11, 19), L(12, 20),
    L(13, 21), H(6, 10), H(7, 11), L(12, 16), L(13, 17), H(10, 12), L(11, 13), H(11, 12),
    );
}

/// Values per wire processed together (32 `u8` = one AVX2 register).
const CHUNK: usize = 32;

/// Loads the `K × K` window values of outputs `x .. x + CHUNK` into the wires (`len` of them
/// valid; a constant length for full chunks so the copies stay inline).
#[inline(always)]
fn load_wires<P: FilterPixel, const K: usize, const WIRES: usize>(
    wires: &mut [[P; CHUNK]; WIRES],
    rows: &[&[P]; K],
    c: usize,
    x: usize,
    len: usize,
) {
    for (i, row) in rows.iter().enumerate() {
        for j in 0..K {
            let o = x + j * c;
            if len == CHUNK {
                wires[i * K + j].copy_from_slice(&row[o..o + CHUNK]);
            } else {
                wires[i * K + j][..len].copy_from_slice(&row[o..o + len]);
            }
        }
    }
}

/// One output row of the 5 × 5 network median: `rows` are the source rows (padded by `K/2`
/// replicated pixels each side), `c` channels, `out` the `w·c` medians.
#[inline(always)]
fn network_row_body<P: FilterPixel>(rows: &[&[P]; 5], c: usize, out: &mut [P]) {
    let n = out.len();
    let mut wires = [[P::default(); CHUNK]; 25];
    let mut x = 0;
    while x < n {
        let len = CHUNK.min(n - x);
        load_wires(&mut wires, rows, c, x, len);
        median25(&mut wires);
        out[x..x + len].copy_from_slice(&wires[12][..len]);
        x += CHUNK;
    }
}

/// The 3 × 3 median from sorted columns: with each column of 3 sorted into (lo, mid, hi), the
/// median is med3(max of the lows, med3 of the mids, min of the highs).
#[inline(always)]
fn median3_row_body<P: FilterPixel>(
    rows: &[&[P]; 3],
    c: usize,
    cols: &mut [Vec<P>; 3],
    out: &mut [P],
) {
    let [a, b, d] = rows;
    let [lo, mid, hi] = cols;
    for (((((l, m), h), &p), &q), &r) in lo
        .iter_mut()
        .zip(mid.iter_mut())
        .zip(hi.iter_mut())
        .zip(a.iter())
        .zip(b.iter())
        .zip(d.iter())
    {
        let (s, t) = (p.lo(q), p.hi(q));
        *l = s.lo(r);
        let u = s.hi(r);
        *m = t.lo(u);
        *h = t.hi(u);
    }
    let n = out.len();
    let med3 = |p: P, q: P, r: P| p.lo(q).hi(p.hi(q).lo(r));
    for (x, o) in out.iter_mut().enumerate().take(n) {
        let lows = lo[x].hi(lo[x + c]).hi(lo[x + 2 * c]);
        let highs = hi[x].lo(hi[x + c]).lo(hi[x + 2 * c]);
        let mids = med3(mid[x], mid[x + c], mid[x + 2 * c]);
        *o = med3(lows, mids, highs);
    }
}

/// Runs the row kernel for `K` with AVX2 where the CPU has it (same results).
fn median_row<P: FilterPixel, const K: usize>(
    rows: &[&[P]; K],
    c: usize,
    cols: &mut [Vec<P>; 3],
    out: &mut [P],
) {
    #[inline(always)]
    fn body<P: FilterPixel, const K: usize>(
        rows: &[&[P]; K],
        c: usize,
        cols: &mut [Vec<P>; 3],
        out: &mut [P],
    ) {
        if let Ok(rows3) = <&[&[P]; 3]>::try_from(&rows[..]) {
            median3_row_body(rows3, c, cols, out);
        } else if let Ok(rows5) = <&[&[P]; 5]>::try_from(&rows[..]) {
            network_row_body(rows5, c, out);
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn body_avx2<P: FilterPixel, const K: usize>(
        rows: &[&[P]; K],
        c: usize,
        cols: &mut [Vec<P>; 3],
        out: &mut [P],
    ) {
        body(rows, c, cols, out)
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { body_avx2(rows, c, cols, out) };
        return;
    }
    body(rows, c, cols, out)
}

/// `cv2.medianBlur(img, k)`: the median over a `k × k` window per channel, border replicated.
/// `k` must be odd (1 returns a copy; an even `k` is treated as `k + 1`).
pub fn median_filter<P: FilterPixel>(img: &ImageBuf<P>, k: usize) -> ImageBuf<P> {
    match k | 1 {
        1 => img.clone(),
        3 => median_small::<P, 3>(img),
        5 => median_small::<P, 5>(img),
        k => P::median_large(img, k),
    }
}

/// The 3 × 3 and 5 × 5 medians, row by row over replicate-padded rows.
fn median_small<P: FilterPixel, const K: usize>(img: &ImageBuf<P>) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let (n, r) = (w * c, K / 2);
    let pw = (w + 2 * r) * c;
    let mut padded = Vec::with_capacity(h * pw);
    for y in 0..h {
        let row = img.row(y);
        let (first, last) = (&row[..c], &row[n - c..]);
        (0..r).for_each(|_| padded.extend_from_slice(first));
        padded.extend_from_slice(row);
        (0..r).for_each(|_| padded.extend_from_slice(last));
    }
    let mut cols = [
        vec![P::default(); pw],
        vec![P::default(); pw],
        vec![P::default(); pw],
    ];
    let mut data = vec![P::default(); h * n];
    for (y, out) in data.chunks_exact_mut(n).enumerate() {
        let rows: [&[P]; K] = std::array::from_fn(|i| {
            let sy = replicate(y as isize + i as isize - r as isize, h);
            &padded[sy * pw..(sy + 1) * pw]
        });
        median_row(&rows, c, &mut cols, out);
    }
    ImageBuf::with_data(w, h, c, data)
}

/// Median over `k × k` by selection, border replicated: the fallback for `u16`/`f32` beyond
/// the networks (slow: `O(k²)` per value, as OpenCV supports only 3 and 5 there).
pub(crate) fn median_select<P: FilterPixel>(img: &ImageBuf<P>, k: usize) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let r = (k / 2) as isize;
    let mut window: Vec<P> = Vec::with_capacity(k * k);
    let mut data = Vec::with_capacity(w * h * c);
    for y in 0..h as isize {
        for x in 0..w as isize {
            for ch in 0..c {
                window.clear();
                for dy in -r..=r {
                    let row = img.row(replicate(y + dy, h));
                    for dx in -r..=r {
                        window.push(row[replicate(x + dx, w) * c + ch]);
                    }
                }
                let mid = window.len() / 2;
                let (_, m, _) = window.select_nth_unstable_by(mid, |a, b| {
                    a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
                });
                data.push(*m);
            }
        }
    }
    ImageBuf::with_data(w, h, c, data)
}

/// Median over `k × k` for `u8` with a sliding histogram per channel (Huang's algorithm, the
/// median tracked incrementally), border replicated.
pub(crate) fn median_histogram(img: &ImageBuf<u8>, k: usize) -> ImageBuf<u8> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let r = (k / 2) as isize;
    let half = (k * k / 2) as u32;
    let src = img.data();
    let mut data = vec![0u8; w * h * c];
    let mut hist = [0u32; 256];
    let mut rows: Vec<usize> = Vec::with_capacity(k);
    for y in 0..h as isize {
        rows.clear();
        rows.extend((-r..=r).map(|dy| replicate(y + dy, h) * w * c));
        for ch in 0..c {
            hist.fill(0);
            for dx in -r..=r {
                let x = replicate(dx, w) * c + ch;
                for &o in &rows {
                    hist[src[o + x] as usize] += 1;
                }
            }
            // m = the median, lt = how many window values are below it.
            let (mut m, mut lt) = (0usize, 0u32);
            while lt + hist[m] <= half {
                lt += hist[m];
                m += 1;
            }
            let out_row = y as usize * w * c;
            data[out_row + ch] = m as u8;
            for x in 1..w as isize {
                let old = replicate(x - r - 1, w) * c + ch;
                let new = replicate(x + r, w) * c + ch;
                for &o in &rows {
                    let (a, b) = (src[o + old] as usize, src[o + new] as usize);
                    hist[a] -= 1;
                    lt -= u32::from(a < m);
                    hist[b] += 1;
                    lt += u32::from(b < m);
                }
                while lt > half {
                    m -= 1;
                    lt -= hist[m];
                }
                while lt + hist[m] <= half {
                    lt += hist[m];
                    m += 1;
                }
                data[out_row + x as usize * c + ch] = m as u8;
            }
        }
    }
    ImageBuf::with_data(w, h, c, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_networks_and_histograms_agree_with_selection() {
        // Wider than two chunks, with a ragged tail.
        let data: Vec<u8> = (0..37 * 9 * 3).map(|i| ((i * 37) % 251) as u8).collect();
        let img = ImageBuf::new(37, 9, 3, data).unwrap();
        for k in [3usize, 5, 7, 9] {
            let slow = median_select(&img, k);
            assert_eq!(median_filter(&img, k), slow, "k = {k}");
            let as_f32 = ImageBuf::new(
                37,
                9,
                3,
                img.data().iter().map(|&v| v as f32 / 255.0).collect(),
            )
            .unwrap();
            let f = median_filter(&as_f32, k);
            assert!(
                f.data()
                    .iter()
                    .zip(slow.data())
                    .all(|(a, b)| (a * 255.0 - *b as f32).abs() < 1e-3),
                "f32, k = {k}"
            );
        }
    }

    #[test]
    fn median_of_a_single_bright_pixel_is_the_background() {
        let mut img = ImageBuf::<u16>::filled(5, 5, 1, 7).unwrap();
        img.data_mut()[12] = 60000;
        assert_eq!(median_filter(&img, 3).data(), &[7u16; 25]);
        // A 1×1 image replicates its only pixel.
        let one = ImageBuf::<u8>::filled(1, 1, 4, 9).unwrap();
        assert_eq!(median_filter(&one, 5), one);
        assert_eq!(median_filter(&one, 7), one);
    }
}

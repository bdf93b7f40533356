//! Branch-free `exp` and `ln` that vectorise (Flex's unary ops call libm one element at a
//! time: `exp` and `log1p` were 36 % of the loss benchmark's samples): the f32 forms, and the
//! f64 forms the fused loss kernels compute f32 inputs in.
//!
//! Max error, asserted over dense grids: ≤ 1 ulp for [`exp`] on [−87, 88] (0 and ∞ where
//! `expf` under- and overflows, denormals between), [`ln`] on positive normals and [`ln_1p`] on
//! t ≥ 0, tiny t included (`tests::error_bounds`); relative to the standard library's f64,
//! [`exp64`] ≤ 2e-11 on [−700, 700] (measured 9.5e-12), [`ln64`] and [`ln_1p64`] ≤ 1e-10 (measured 5e-11;
//! `tests::wide_error_bounds`). f64 inputs use the standard library.

// Computed in f64 lanes (half the width of f32 but still vectorised): the f32 results are then
// within about half an ulp, as libm's — a 2-ulp polynomial in f32 moved a tiny Dice gradient
// past the PyTorch parity tolerance.
const LOG2E: f64 = std::f64::consts::LOG2_E;
const LN2: f64 = std::f64::consts::LN_2;
/// 1.5 · 2^52: adding and subtracting it rounds an f64 to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// e^x for f32.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp64(x as f64) as f32
}

/// e^x in f64 to about 3e-11 relative; arguments are clamped to [−708, 709] (the normal f64
/// range), so an f32 result still overflows to ∞ and underflows to 0 where `expf` does.
#[inline(always)]
pub fn exp64(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    // t's low mantissa bits hold n = round(x·log₂e) (two's complement): no float→int
    // conversion, which AVX2 lacks, so the loop stays vectorised.
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2;
    // Taylor to degree 9 on |r| ≤ ln2/2: truncation < 3e-11 relative.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0
                            + r * (1.0 / 720.0
                                + r * (1.0 / 5040.0 + r * (1.0 / 40320.0 + r / 362880.0))))))));
    // 2^n through the exponent bits (n + 1023 ∈ [2, 2046]; the shift drops t's own exponent).
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    p * scale
}

/// ln(u) for a positive normal f64, to about 1e-11 relative (enough for an f32 result).
#[inline(always)]
pub fn ln64(u: f64) -> f64 {
    let bits = u.to_bits();
    // The biased exponent as an f64 through 2^52's mantissa (no int→float conversion).
    let e =
        f64::from_bits((bits >> 52) | 0x4330_0000_0000_0000) - (4_503_599_627_370_496.0 + 1023.0);
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // m ∈ [√½, √2): then s below is within ±0.172.
    let big = m > std::f64::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    let e = if big { e + 1.0 } else { e };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let s2 = s * s;
    // ln(1+f) = 2·atanh(s) = 2s(1 + s²/3 + s⁴/5 + …), to s^12.
    let series =
        1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 / 11.0))));
    e * LN2 + 2.0 * s * series
}

/// ln(v) for a positive normal f32.
#[inline(always)]
pub fn ln(v: f32) -> f32 {
    ln64(v as f64) as f32
}

/// ln(1 + t) for t ≥ 0, accurate also where 1 + t rounds to 1.
#[inline(always)]
pub fn ln_1p(t: f32) -> f32 {
    ln_1p64(t as f64) as f32
}

/// ln(1 + t) in f64 for t ≥ 0, to about 1e-11 relative.
#[inline(always)]
pub fn ln_1p64(t: f64) -> f64 {
    let u = 1.0 + t;
    let d = u - 1.0;
    // ln(u)·t/(u−1) corrects the rounding of 1 + t (Goldberg's trick); t itself when u == 1.
    if d == 0.0 { t } else { ln64(u) * (t / d) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(got: f32, want: f64) -> f64 {
        let want32 = want as f32;
        let ulp = (f32::from_bits(want32.abs().to_bits() + 1) - want32.abs()) as f64;
        (got as f64 - want).abs() / ulp
    }

    #[test]
    fn error_bounds() {
        let mut worst = [0f64; 3];
        let steps = 2_000_000;
        for i in 0..=steps {
            let x = -87.0 + 175.0 * i as f64 / steps as f64;
            worst[0] = worst[0].max(ulps(exp(x as f32), (x as f32 as f64).exp()));
            let v = (10f64).powf(-37.0 + 75.0 * i as f64 / steps as f64) as f32;
            worst[1] = worst[1].max(ulps(ln(v), (v as f64).ln()));
            let t = (10f64).powf(-30.0 + 30.0 * i as f64 / steps as f64) as f32;
            worst[2] = worst[2].max(ulps(ln_1p(t), (t as f64).ln_1p()));
        }
        assert!(worst[0] <= 1.0, "exp: {} ulp", worst[0]);
        assert!(worst[1] <= 1.0, "ln: {} ulp", worst[1]);
        assert!(worst[2] <= 1.0, "ln_1p: {} ulp", worst[2]);
    }

    /// The f64 forms the fused loss kernels compute in: relative error against the standard
    /// library over their ranges (measured: exp64 9.5e-12, ln64 5.0e-11, ln_1p64 5.1e-11).
    #[test]
    fn wide_error_bounds() {
        let mut worst = [0f64; 3];
        let steps = 1_000_000;
        for i in 0..=steps {
            let u = i as f64 / steps as f64;
            let x = -700.0 + 1400.0 * u;
            worst[0] = worst[0].max(((exp64(x) - x.exp()) / x.exp()).abs());
            let v = 10f64.powf(-300.0 + 600.0 * u);
            worst[1] = worst[1].max(((ln64(v) - v.ln()) / v.ln().abs().max(1e-300)).abs());
            let t = 10f64.powf(-30.0 + 30.0 * u);
            worst[2] = worst[2].max(((ln_1p64(t) - t.ln_1p()) / t.ln_1p()).abs());
        }
        assert!(worst[0] < 2e-11, "exp64: {:e}", worst[0]);
        assert!(worst[1] < 1e-10, "ln64: {:e}", worst[1]);
        assert!(worst[2] < 1e-10, "ln_1p64: {:e}", worst[2]);
    }
}

//! The deterministic weights of the parity fixtures (`tests/fixtures/zoo/generate_zoo.py`
//! computes the same values): every tensor is a function of its `state_dict` key and element
//! index, so the fixtures hold no weights.

/// FNV-1a, 32 bits.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811C_9DC5u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

/// `n` values in [-1, 1): an integer hash of (name, index), exact in f32.
pub fn unit(name: &str, n: usize) -> Vec<f64> {
    let h = fnv1a(name);
    (0..n as u64)
        .map(|i| {
            let mut x = h ^ (i.wrapping_mul(0x9E37_79B1) as u32);
            x = x.wrapping_mul(0x85EB_CA6B);
            x ^= x >> 13;
            x = x.wrapping_mul(0xC2B2_AE35);
            x ^= x >> 16;
            (x >> 8) as f64 / (1u32 << 24) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// The value of the tensor `name` of shape `shape` (mirrors the generator's `fill`).
pub fn fill(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let v = unit(name, n);
    let map = |f: &dyn Fn(f64) -> f64| v.iter().map(|&x| f(x) as f32).collect();
    if name.ends_with("running_var") {
        map(&|x| 1.0 + 0.25 * (x + 1.0))
    } else if name.ends_with("running_mean") {
        map(&|x| 0.1 * x)
    } else if name.ends_with("weight") && shape.len() >= 2 {
        let scale = (3.0 / (n / shape[0]) as f64).sqrt();
        map(&|x| x * scale)
    } else if name.ends_with("bias") {
        map(&|x| 0.1 * x)
    } else if name.ends_with("weight") {
        map(&|x| 1.0 + 0.2 * x)
    } else {
        map(&|x| 0.2 * x)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unit_matches_the_python_generator() {
        // generate_zoo.py's unit("input", 3), printed by numpy 2.4.6 in float64.
        let got = super::unit("input", 3);
        let want = [PY_INPUT_0, PY_INPUT_1, PY_INPUT_2];
        for (g, w) in got.iter().zip(want) {
            assert_eq!(*g, w, "{got:?}");
        }
    }

    const PY_INPUT_0: f64 = -0.8864299058914185;
    const PY_INPUT_1: f64 = 0.486902117729187;
    const PY_INPUT_2: f64 = 0.9781453609466553;
}

//! `i32` lanes of one SIMD vector, for the colour kernels written once for both widths: 16
//! lanes with AVX-512 ([`I32x16`]) and 8 with AVX2 ([`I32x8`]). Each kernel body is an
//! `#[inline(always)]` generic function; a thin `#[target_feature]` wrapper per width calls it,
//! so the intrinsics inline into code compiled for the right features.
//!
//! Values of these types exist only inside such wrappers, after the CPU's features were checked;
//! that is what makes the `unsafe` intrinsic calls in the methods sound.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// The lane operations the colour kernels use (all on `i32`, shifts by a constant count).
pub(crate) trait Lanes: Copy {
    /// Every lane `v`.
    fn splat(v: i32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// The low 32 bits of the product.
    fn mul(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
    /// Arithmetic shift right by `n`.
    fn shr(self, n: i32) -> Self;
    /// Logical shift right by `n`.
    fn shr_logical(self, n: i32) -> Self;
    /// Shift left by `n`.
    fn shl(self, n: i32) -> Self;
    /// `table[idx]` per lane.
    ///
    /// # Safety
    /// Every lane of `idx` indexes `table`.
    unsafe fn gather(table: &[i32], idx: Self) -> Self;

    /// `x + k` per lane.
    #[inline(always)]
    fn add_k(self, k: i32) -> Self {
        self.add(Self::splat(k))
    }
    /// `x · k` per lane.
    #[inline(always)]
    fn mul_k(self, k: i32) -> Self {
        self.mul(Self::splat(k))
    }
    /// Each lane clamped to `lo..=hi`.
    #[inline(always)]
    fn clamp(self, lo: i32, hi: i32) -> Self {
        self.max(Self::splat(lo)).min(Self::splat(hi))
    }
    /// `(x + 2^(n−1)) >> n`, arithmetic (`colorspace::descale`).
    #[inline(always)]
    fn descale(self, n: i32) -> Self {
        self.add_k(1 << (n - 1)).shr(n)
    }
    /// The three low bytes of each lane (`r | g << 8 | b << 16`) as three vectors.
    #[inline(always)]
    fn channels(self) -> [Self; 3] {
        let byte = Self::splat(0xff);
        [
            self.and(byte),
            self.shr_logical(8).and(byte),
            self.shr_logical(16).and(byte),
        ]
    }
    /// The inverse of [`Lanes::channels`] (each value a byte).
    #[inline(always)]
    fn join([a, b, c]: [Self; 3]) -> Self {
        a.or(b.shl(8)).or(c.shl(16))
    }
}

macro_rules! lanes {
    ($name:ident, $v:ty, $doc:literal, $set1:ident, $add:ident, $sub:ident, $mullo:ident,
     $and:ident, $or:ident, $min:ident, $max:ident, $sra:ident, $srl:ident, $sll:ident,
     |$table:ident, $idx:ident| $gather:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        pub(crate) struct $name(pub(crate) $v);

        // SAFETY (every method): values exist only where the CPU has the features (module docs).
        impl Lanes for $name {
            #[inline(always)]
            fn splat(v: i32) -> Self {
                Self(unsafe { $set1(v) })
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                Self(unsafe { $add(self.0, o.0) })
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                Self(unsafe { $sub(self.0, o.0) })
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                Self(unsafe { $mullo(self.0, o.0) })
            }
            #[inline(always)]
            fn and(self, o: Self) -> Self {
                Self(unsafe { $and(self.0, o.0) })
            }
            #[inline(always)]
            fn or(self, o: Self) -> Self {
                Self(unsafe { $or(self.0, o.0) })
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                Self(unsafe { $min(self.0, o.0) })
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                Self(unsafe { $max(self.0, o.0) })
            }
            #[inline(always)]
            fn shr(self, n: i32) -> Self {
                Self(unsafe { $sra(self.0, _mm_cvtsi32_si128(n)) })
            }
            #[inline(always)]
            fn shr_logical(self, n: i32) -> Self {
                Self(unsafe { $srl(self.0, _mm_cvtsi32_si128(n)) })
            }
            #[inline(always)]
            fn shl(self, n: i32) -> Self {
                Self(unsafe { $sll(self.0, _mm_cvtsi32_si128(n)) })
            }
            #[inline(always)]
            unsafe fn gather($table: &[i32], $idx: Self) -> Self {
                Self(unsafe { $gather })
            }
        }
    };
}

lanes!(
    I32x16,
    __m512i,
    "16 `i32` lanes (AVX-512 F).",
    _mm512_set1_epi32,
    _mm512_add_epi32,
    _mm512_sub_epi32,
    _mm512_mullo_epi32,
    _mm512_and_si512,
    _mm512_or_si512,
    _mm512_min_epi32,
    _mm512_max_epi32,
    _mm512_sra_epi32,
    _mm512_srl_epi32,
    _mm512_sll_epi32,
    |table, idx| _mm512_i32gather_epi32::<4>(idx.0, table.as_ptr())
);

lanes!(
    I32x8,
    __m256i,
    "8 `i32` lanes (AVX2).",
    _mm256_set1_epi32,
    _mm256_add_epi32,
    _mm256_sub_epi32,
    _mm256_mullo_epi32,
    _mm256_and_si256,
    _mm256_or_si256,
    _mm256_min_epi32,
    _mm256_max_epi32,
    _mm256_sra_epi32,
    _mm256_srl_epi32,
    _mm256_sll_epi32,
    |table, idx| _mm256_i32gather_epi32::<4>(table.as_ptr(), idx.0)
);

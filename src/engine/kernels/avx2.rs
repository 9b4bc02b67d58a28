//! AVX2+FMA tiles: up to 4 weight rows × 2 input vectors (16 registers hold 8 accumulators,
//! the weights and the inputs), one 256-bit accumulator per output.

use std::arch::x86_64::*;

use super::gemm_driver;

#[target_feature(enable = "avx2,fma")]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b0100_1110>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b1011_0001>(s));
    _mm_cvtsi128_si32(s)
}

/// f32 weights and inputs, 8 columns per step.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_f32<const R: usize, const V: usize>(
    w: *const f32,
    x: *const f32,
    stride: usize,
) -> [[f32; V]; R] {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm256_setzero_ps(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm256_loadu_ps(x.add(j * stride + k));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(w.add(i * stride + k));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(wv, *xj, *a);
                }
            }
        }
        k += 8;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = hsum_ps(*a);
        }
    }
    out
}

/// bf16 weights widened to f32, f32 inputs, 8 columns per step.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_bf16<const R: usize, const V: usize>(
    w: *const u16,
    x: *const f32,
    stride: usize,
) -> [[f32; V]; R] {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm256_setzero_ps(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm256_loadu_ps(x.add(j * stride + k));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let h = _mm_loadu_si128(w.add(i * stride + k).cast());
                let wv = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(wv, *xj, *a);
                }
            }
        }
        k += 8;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = hsum_ps(*a);
        }
    }
    out
}

/// int8 weights widened to i16, i16 inputs, pairwise multiply-add into i32, 16 columns per step.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_int8<const R: usize, const V: usize>(
    w: *const i8,
    x: *const i16,
    stride: usize,
) -> [[i32; V]; R] {
    let mut acc = [[_mm256_setzero_si256(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm256_setzero_si256(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm256_loadu_si256(x.add(j * stride + k).cast());
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(i * stride + k).cast()));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(wv, *xj));
                }
            }
        }
        k += 16;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = hsum_epi32(*a);
        }
    }
    out
}

gemm_driver!(f32, f32_imp, "avx2,fma", 2, tile_f32, w: f32, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(bf16, bf16_imp, "avx2,fma", 2, tile_bf16, w: u16, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(int8, int8_imp, "avx2,fma", 2, tile_int8,
    w: i8, x: i16, finish: |q, r, v, acc| acc as f32 * q.scale[r] * q.xs[v]);

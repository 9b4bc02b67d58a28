//! AVX2+FMA tiles: up to 4 weight rows × 2 input vectors (16 registers hold 8 accumulators,
//! the weights and the inputs), one 256-bit accumulator per output.

use std::arch::x86_64::*;

use super::{gemm_driver, tile_kernel};

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

tile_kernel!(
    /// f32 weights and inputs, 8 columns per step.
    tile_f32, "avx2,fma", w: f32, x: f32, out: f32,
    zero: _mm256_setzero_ps(), x_zero: _mm256_setzero_ps(), step: 8,
    load_x: |p| _mm256_loadu_ps(p),
    load_w: |p| _mm256_loadu_ps(p),
    madd: |a, w, x| _mm256_fmadd_ps(w, *x, *a),
    reduce: |a| hsum_ps(*a),
);

tile_kernel!(
    /// bf16 weights widened to f32, f32 inputs, 8 columns per step.
    tile_bf16, "avx2,fma", w: u16, x: f32, out: f32,
    zero: _mm256_setzero_ps(), x_zero: _mm256_setzero_ps(), step: 8,
    load_x: |p| _mm256_loadu_ps(p),
    load_w: |p| _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
        _mm_loadu_si128(p.cast()),
    ))),
    madd: |a, w, x| _mm256_fmadd_ps(w, *x, *a),
    reduce: |a| hsum_ps(*a),
);

tile_kernel!(
    /// int8 weights widened to i16, i16 inputs, pairwise multiply-add into i32, 16 columns per
    /// step.
    tile_int8, "avx2,fma", w: i8, x: i16, out: i32,
    zero: _mm256_setzero_si256(), x_zero: _mm256_setzero_si256(), step: 16,
    load_x: |p| _mm256_loadu_si256(p.cast()),
    load_w: |p| _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())),
    madd: |a, w, x| _mm256_add_epi32(*a, _mm256_madd_epi16(w, *x)),
    reduce: |a| hsum_epi32(*a),
);

gemm_driver!(f32, f32_imp, "avx2,fma", 2, tile_f32, w: f32, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(bf16, bf16_imp, "avx2,fma", 2, tile_bf16, w: u16, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(int8, int8_imp, "avx2,fma", 2, tile_int8,
    w: i8, x: i16, finish: |q, r, v, acc| acc as f32 * q.scale[r] * q.xs[v]);

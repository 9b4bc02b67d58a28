//! AVX-512 tiles: up to 4 weight rows × 4 input vectors, one 512-bit accumulator per output.

use std::arch::x86_64::*;

use super::{gemm_driver, tile_kernel};

tile_kernel!(
    /// f32 weights and inputs, 16 columns per step.
    tile_f32, "avx512f,avx512bw,avx512vl,fma", w: f32, x: f32, out: f32,
    zero: _mm512_setzero_ps(), x_zero: _mm512_setzero_ps(), step: 16,
    load_x: |p| _mm512_loadu_ps(p),
    load_w: |p| _mm512_loadu_ps(p),
    madd: |a, w, x| _mm512_fmadd_ps(w, *x, *a),
    reduce: |a| _mm512_reduce_add_ps(*a),
);

tile_kernel!(
    /// bf16 weights widened to f32 (exact: the bits move to the top half), f32 inputs,
    /// 16 columns per step.
    tile_bf16, "avx512f,avx512bw,avx512vl,fma", w: u16, x: f32, out: f32,
    zero: _mm512_setzero_ps(), x_zero: _mm512_setzero_ps(), step: 16,
    load_x: |p| _mm512_loadu_ps(p),
    load_w: |p| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(
        _mm256_loadu_si256(p.cast()),
    ))),
    madd: |a, w, x| _mm512_fmadd_ps(w, *x, *a),
    reduce: |a| _mm512_reduce_add_ps(*a),
);

tile_kernel!(
    /// bf16 weights and bf16 inputs through the AVX-512 BF16 pair dot product, 32 columns per
    /// step (__m512bh and __m512i are both 64 plain bytes).
    tile_bf16_dot, "avx512f,avx512bw,avx512vl,fma,avx512bf16", w: u16, x: u16, out: f32,
    zero: _mm512_setzero_ps(), x_zero: _mm512_setzero_si512(), step: 32,
    load_x: |p| _mm512_loadu_si512(p.cast()),
    load_w: |p| std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(p.cast())),
    madd: |a, w, x| _mm512_dpbf16_ps(*a, w, std::mem::transmute::<__m512i, __m512bh>(*x)),
    reduce: |a| _mm512_reduce_add_ps(*a),
);

tile_kernel!(
    /// int8 weights widened to i16, i16 inputs, pairwise multiply-add into i32, 32 columns per
    /// step.
    tile_int8, "avx512f,avx512bw,avx512vl,fma", w: i8, x: i16, out: i32,
    zero: _mm512_setzero_si512(), x_zero: _mm512_setzero_si512(), step: 32,
    load_x: |p| _mm512_loadu_si512(p.cast()),
    load_w: |p| _mm512_cvtepi8_epi16(_mm256_loadu_si256(p.cast())),
    madd: |a, w, x| _mm512_add_epi32(*a, _mm512_madd_epi16(w, *x)),
    reduce: |a| _mm512_reduce_add_epi32(*a),
);

tile_kernel!(
    /// int8 weights, inputs offset to unsigned bytes, VNNI 4-way dot product, 64 columns per
    /// step.
    tile_int8_vnni, "avx512f,avx512bw,avx512vl,fma,avx512vnni", w: i8, x: u8, out: i32,
    zero: _mm512_setzero_si512(), x_zero: _mm512_setzero_si512(), step: 64,
    load_x: |p| _mm512_loadu_si512(p.cast()),
    load_w: |p| _mm512_loadu_si512(p.cast()),
    madd: |a, w, x| _mm512_dpbusd_epi32(*a, *x, w),
    reduce: |a| _mm512_reduce_add_epi32(*a),
);

gemm_driver!(f32, f32_imp, "avx512f,avx512bw,avx512vl,fma", 4, tile_f32,
    w: f32, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(bf16, bf16_imp, "avx512f,avx512bw,avx512vl,fma", 4, tile_bf16,
    w: u16, x: f32, finish: |_q, _r, _v, acc| acc);
gemm_driver!(bf16_dot, bf16_dot_imp, "avx512f,avx512bw,avx512vl,fma,avx512bf16", 4, tile_bf16_dot,
    w: u16, x: u16, finish: |_q, _r, _v, acc| acc);
gemm_driver!(int8, int8_imp, "avx512f,avx512bw,avx512vl,fma", 4, tile_int8,
    w: i8, x: i16, finish: |q, r, v, acc| acc as f32 * q.scale[r] * q.xs[v]);
gemm_driver!(int8_vnni, int8_vnni_imp, "avx512f,avx512bw,avx512vl,fma,avx512vnni", 4, tile_int8_vnni,
    w: i8, x: u8, finish: |q, r, v, acc| (acc - q.offset[r]) as f32 * q.scale[r] * q.xs[v]);

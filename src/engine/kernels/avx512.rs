//! AVX-512 tiles: up to 4 weight rows × 4 input vectors, one 512-bit accumulator per output.

use std::arch::x86_64::*;

use super::gemm_driver;

/// f32 weights and inputs, 16 columns per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn tile_f32<const R: usize, const V: usize>(
    w: *const f32,
    x: *const f32,
    stride: usize,
) -> [[f32; V]; R] {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm512_setzero_ps(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm512_loadu_ps(x.add(j * stride + k));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = _mm512_loadu_ps(w.add(i * stride + k));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_fmadd_ps(wv, *xj, *a);
                }
            }
        }
        k += 16;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = _mm512_reduce_add_ps(*a);
        }
    }
    out
}

/// Widens 16 bf16 values to f32 (exact: the bits move to the top half).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn load_bf16x16(p: *const u16) -> __m512 {
    // SAFETY: the caller guarantees 16 readable values at `p`.
    let h = unsafe { _mm256_loadu_si256(p.cast()) };
    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
}

/// bf16 weights widened to f32, f32 inputs, 16 columns per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn tile_bf16<const R: usize, const V: usize>(
    w: *const u16,
    x: *const f32,
    stride: usize,
) -> [[f32; V]; R] {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm512_setzero_ps(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm512_loadu_ps(x.add(j * stride + k));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = load_bf16x16(w.add(i * stride + k));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_fmadd_ps(wv, *xj, *a);
                }
            }
        }
        k += 16;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = _mm512_reduce_add_ps(*a);
        }
    }
    out
}

/// bf16 weights and bf16 inputs through the AVX-512 BF16 pair dot product, 32 columns per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,avx512bf16")]
unsafe fn tile_bf16_dot<const R: usize, const V: usize>(
    w: *const u16,
    x: *const u16,
    stride: usize,
) -> [[f32; V]; R] {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver);
        // __m512bh and __m512i are both 64 plain bytes.
        unsafe {
            let mut xv = [_mm512_setzero_si512(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm512_loadu_si512(x.add(j * stride + k).cast());
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(w.add(i * stride + k).cast()));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_dpbf16_ps(*a, wv, std::mem::transmute::<__m512i, __m512bh>(*xj));
                }
            }
        }
        k += 32;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = _mm512_reduce_add_ps(*a);
        }
    }
    out
}

/// int8 weights widened to i16, i16 inputs, pairwise multiply-add into i32, 32 columns per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
unsafe fn tile_int8<const R: usize, const V: usize>(
    w: *const i8,
    x: *const i16,
    stride: usize,
) -> [[i32; V]; R] {
    let mut acc = [[_mm512_setzero_si512(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm512_setzero_si512(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm512_loadu_si512(x.add(j * stride + k).cast());
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(w.add(i * stride + k).cast()));
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_add_epi32(*a, _mm512_madd_epi16(wv, *xj));
                }
            }
        }
        k += 32;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = _mm512_reduce_add_epi32(*a);
        }
    }
    out
}

/// int8 weights, inputs offset to unsigned bytes, VNNI 4-way dot product, 64 columns per step.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,avx512vnni")]
unsafe fn tile_int8_vnni<const R: usize, const V: usize>(
    w: *const i8,
    x: *const u8,
    stride: usize,
) -> [[i32; V]; R] {
    let mut acc = [[_mm512_setzero_si512(); V]; R];
    let mut k = 0;
    while k < stride {
        // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the driver).
        unsafe {
            let mut xv = [_mm512_setzero_si512(); V];
            for (j, xj) in xv.iter_mut().enumerate() {
                *xj = _mm512_loadu_si512(x.add(j * stride + k).cast());
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let wv = _mm512_loadu_si512(w.add(i * stride + k).cast());
                for (a, xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_dpbusd_epi32(*a, *xj, wv);
                }
            }
        }
        k += 64;
    }
    let mut out = [[Default::default(); V]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (o, a) in o.iter_mut().zip(a) {
            *o = _mm512_reduce_add_epi32(*a);
        }
    }
    out
}

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

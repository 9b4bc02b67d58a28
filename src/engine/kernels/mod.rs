//! Matrix kernels: `y[v] = W · x[v]` for a batch of input vectors, with weights in f32, bf16 or
//! int8 (per-row scales), on a scalar reference path, AVX2+FMA and AVX-512.
//!
//! The CPU is inspected once ([`Isa::detect`]) and every call dispatches through a `match` on
//! [`Isa`]. Weight rows are padded with zeros to a multiple of [`PAD`] columns and inputs are
//! copied into a padded buffer, so the vector loops never see a remainder; only the row and
//! vector counts have edges, handled by smaller tiles that do the same arithmetic. Each output
//! element is accumulated in the same order whatever the batch size or tile, so a stream's
//! result does not depend on which other streams share its batch.

pub mod activation;
mod avx2;
mod avx512;
mod cell;
mod scalar;

pub use cell::lstm_cell;

use std::sync::{Arc, OnceLock};

/// Columns are padded to a multiple of this (64 int8 = one 512-bit register).
pub const PAD: usize = 64;

/// Instruction-set level used by the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, the reference every other path is tested against.
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F/BW/VL, optionally with the BF16 dot product and VNNI instructions.
    Avx512 { bf16: bool, vnni: bool },
}

impl Isa {
    /// The best level this CPU supports, detected once per process.
    pub fn detect() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("fma")
                {
                    return Isa::Avx512 {
                        bf16: is_x86_feature_detected!("avx512bf16"),
                        vnni: is_x86_feature_detected!("avx512vnni"),
                    };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Isa::Avx2;
                }
            }
            Isa::Scalar
        })
    }

    /// Every level this CPU can run, from the reference up (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Scalar];
        match Isa::detect() {
            Isa::Scalar => {}
            Isa::Avx2 => out.push(Isa::Avx2),
            Isa::Avx512 { bf16, vnni } => {
                out.push(Isa::Avx2);
                out.push(Isa::Avx512 {
                    bf16: false,
                    vnni: false,
                });
                if bf16 || vnni {
                    out.push(Isa::Avx512 { bf16, vnni });
                }
            }
        }
        out
    }

    /// A short name for reports: `scalar`, `avx2`, `avx512`, `avx512+bf16+vnni`.
    pub fn name(self) -> String {
        match self {
            Isa::Scalar => "scalar".into(),
            Isa::Avx2 => "avx2".into(),
            Isa::Avx512 { bf16, vnni } => {
                let mut s = String::from("avx512");
                if bf16 {
                    s.push_str("+bf16");
                }
                if vnni {
                    s.push_str("+vnni");
                }
                s
            }
        }
    }
}

/// How a weight matrix is stored at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// 32-bit floats, exact.
    F32,
    /// bfloat16 (8-bit mantissa); inputs stay f32 unless the CPU has the BF16 dot product.
    Bf16,
    /// 8-bit integers with one f32 scale per row; inputs quantised per vector.
    Int8,
}

impl Format {
    /// Parses `f32`, `bf16` or `int8`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "f32" => Some(Format::F32),
            "bf16" => Some(Format::Bf16),
            "int8" => Some(Format::Int8),
            _ => None,
        }
    }

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::Bf16 => "bf16",
            Format::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Format::parse(s).ok_or_else(|| format!("unknown weight format {s:?} (f32, bf16 or int8)"))
    }
}

/// Rounds an f32 to bfloat16 (round to nearest even; NaN stays NaN).
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// Widens a bfloat16 to f32 (exact).
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

enum Weights {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
    Int8 {
        q: Vec<i8>,
        scale: Vec<f32>,
        /// 128 · Σ q over the row: the VNNI path feeds inputs offset by 128 as unsigned bytes.
        offset: Vec<i32>,
    },
}

/// Inputs copied into padded rows in the form the kernel reads.
enum Packed {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
    I16 { x: Vec<i16>, scale: Vec<f32> },
    U8 { x: Vec<u8>, scale: Vec<f32> },
}

impl Packed {
    /// Room for `max_batch` padded vectors of `n / max_batch` values.
    fn new(format: Format, isa: Isa, n: usize, max_batch: usize) -> Packed {
        match (format, isa) {
            (Format::F32, _) => Packed::F32(vec![0.0; n]),
            (Format::Bf16, Isa::Avx512 { bf16: true, .. }) => Packed::Bf16(vec![0; n]),
            (Format::Bf16, _) => Packed::F32(vec![0.0; n]),
            (Format::Int8, Isa::Avx512 { vnni: true, .. }) => Packed::U8 {
                x: vec![128; n],
                scale: vec![0.0; max_batch],
            },
            (Format::Int8, _) => Packed::I16 {
                x: vec![0; n],
                scale: vec![0.0; max_batch],
            },
        }
    }
}

/// A weight matrix (`rows × cols`, row-major like PyTorch's `weight`) with the input buffer it
/// needs for up to `max_batch` vectors per call. All memory is allocated here.
///
/// The weights are shared: [`Matrix::share`] makes another matrix over the same weights with
/// its own input buffer, so several threads (or several owners on one thread) can run the same
/// layer while the weights are in memory once.
pub struct Matrix {
    rows: usize,
    cols: usize,
    stride: usize,
    max_batch: usize,
    format: Format,
    isa: Isa,
    w: Arc<Weights>,
    packed: Packed,
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("format", &self.format)
            .field("isa", &self.isa)
            .finish()
    }
}

/// Rounds `n` up to a multiple of [`PAD`].
pub fn padded(n: usize) -> usize {
    n.div_ceil(PAD).max(1) * PAD
}

impl Matrix {
    /// Packs `data` (`rows × cols`, row-major) into `format` for the kernels of `isa`.
    ///
    /// # Panics
    /// If `data.len() != rows * cols` or `max_batch == 0`: both are programming errors; model
    /// loading validates shapes before it builds matrices.
    pub fn new(
        data: &[f32],
        rows: usize,
        cols: usize,
        format: Format,
        isa: Isa,
        max_batch: usize,
    ) -> Matrix {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        assert!(
            max_batch > 0,
            "a matrix needs room for at least one input vector"
        );
        let stride = padded(cols);
        let w = match format {
            Format::F32 => {
                let mut w = vec![0.0f32; rows * stride];
                for (dst, src) in w
                    .chunks_exact_mut(stride)
                    .zip(data.chunks_exact(cols.max(1)))
                {
                    dst[..cols].copy_from_slice(&src[..cols]);
                }
                Weights::F32(w)
            }
            Format::Bf16 => {
                let mut w = vec![0u16; rows * stride];
                for (dst, src) in w
                    .chunks_exact_mut(stride)
                    .zip(data.chunks_exact(cols.max(1)))
                {
                    for (d, s) in dst.iter_mut().zip(&src[..cols]) {
                        *d = f32_to_bf16(*s);
                    }
                }
                Weights::Bf16(w)
            }
            Format::Int8 => {
                let mut q = vec![0i8; rows * stride];
                let mut scale = vec![0.0f32; rows];
                let mut offset = vec![0i32; rows];
                for r in 0..rows {
                    let src = &data[r * cols..(r + 1) * cols];
                    let (s, _) = quantize_into(src, &mut q[r * stride..r * stride + cols]);
                    scale[r] = s;
                    offset[r] = 128
                        * q[r * stride..(r + 1) * stride]
                            .iter()
                            .map(|&v| v as i32)
                            .sum::<i32>();
                }
                Weights::Int8 { q, scale, offset }
            }
        };
        Matrix {
            rows,
            cols,
            stride,
            max_batch,
            format,
            isa,
            w: Arc::new(w),
            packed: Packed::new(format, isa, max_batch * stride, max_batch),
        }
    }

    /// Another matrix over the same weights (not copied) with its own input buffer for up to
    /// `max_batch` vectors per call.
    ///
    /// # Panics
    /// If `max_batch == 0`.
    pub fn share(&self, max_batch: usize) -> Matrix {
        assert!(
            max_batch > 0,
            "a matrix needs room for at least one input vector"
        );
        Matrix {
            w: Arc::clone(&self.w),
            max_batch,
            packed: Packed::new(self.format, self.isa, max_batch * self.stride, max_batch),
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
            format: self.format,
            isa: self.isa,
        }
    }

    /// Output size.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input size.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Most input vectors per call.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Weight storage format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Kernel level.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Bytes of weights the kernel reads per call.
    pub fn weight_bytes(&self) -> usize {
        match &*self.w {
            Weights::F32(w) => w.len() * 4,
            Weights::Bf16(w) => w.len() * 2,
            Weights::Int8 { q, scale, .. } => q.len() + scale.len() * 4,
        }
    }

    /// `y[v·rows + r] = Σ_c W[r, c] · x[v·cols + c]` for `n = x.len() / cols` vectors.
    ///
    /// # Panics
    /// If the slice lengths do not match the shape or `n` exceeds `max_batch`; callers check
    /// shapes once at their API boundary.
    pub fn matmul(&mut self, x: &[f32], y: &mut [f32]) {
        let cols = self.cols;
        let n = x
            .len()
            .checked_div(cols)
            .unwrap_or(y.len() / self.rows.max(1));
        assert!(
            n * cols == x.len() && n * self.rows == y.len() && n <= self.max_batch,
            "matmul shape mismatch"
        );
        if n == 0 {
            return;
        }
        let stride = self.stride;
        match &mut self.packed {
            Packed::F32(buf) => {
                for v in 0..n {
                    buf[v * stride..v * stride + cols]
                        .copy_from_slice(&x[v * cols..(v + 1) * cols]);
                }
            }
            Packed::Bf16(buf) => {
                for v in 0..n {
                    for (d, s) in buf[v * stride..v * stride + cols]
                        .iter_mut()
                        .zip(&x[v * cols..(v + 1) * cols])
                    {
                        *d = f32_to_bf16(*s);
                    }
                }
            }
            Packed::I16 { x: buf, scale } => {
                for v in 0..n {
                    let src = &x[v * cols..(v + 1) * cols];
                    let inv = quant_scale(src);
                    scale[v] = inv.0;
                    for (d, s) in buf[v * stride..v * stride + cols].iter_mut().zip(src) {
                        *d = quant_one(*s, inv.1) as i16;
                    }
                }
            }
            Packed::U8 { x: buf, scale } => {
                for v in 0..n {
                    let src = &x[v * cols..(v + 1) * cols];
                    let inv = quant_scale(src);
                    scale[v] = inv.0;
                    for (d, s) in buf[v * stride..v * stride + cols].iter_mut().zip(src) {
                        *d = (quant_one(*s, inv.1) as i16 + 128) as u8;
                    }
                }
            }
        }
        self.run(n, y);
    }

    fn run(&self, n: usize, y: &mut [f32]) {
        let (rows, stride) = (self.rows, self.stride);
        let none = Quant::default();
        match (&*self.w, &self.packed, self.isa) {
            (Weights::F32(w), Packed::F32(x), isa) => match isa {
                Isa::Scalar => scalar::f32(w, rows, stride, x, n, y, none),
                Isa::Avx2 => avx2::f32(w, rows, stride, x, n, y, none),
                Isa::Avx512 { .. } => avx512::f32(w, rows, stride, x, n, y, none),
            },
            (Weights::Bf16(w), Packed::F32(x), isa) => match isa {
                Isa::Scalar => scalar::bf16(w, rows, stride, x, n, y, none),
                Isa::Avx2 => avx2::bf16(w, rows, stride, x, n, y, none),
                Isa::Avx512 { .. } => avx512::bf16(w, rows, stride, x, n, y, none),
            },
            (Weights::Bf16(w), Packed::Bf16(x), _) => {
                avx512::bf16_dot(w, rows, stride, x, n, y, none)
            }
            (Weights::Int8 { q, scale, offset }, Packed::I16 { x, scale: xs }, isa) => {
                let quant = Quant { scale, offset, xs };
                match isa {
                    Isa::Scalar => scalar::int8(q, rows, stride, x, n, y, quant),
                    Isa::Avx2 => avx2::int8(q, rows, stride, x, n, y, quant),
                    Isa::Avx512 { .. } => avx512::int8(q, rows, stride, x, n, y, quant),
                }
            }
            (Weights::Int8 { q, scale, offset }, Packed::U8 { x, scale: xs }, _) => {
                avx512::int8_vnni(q, rows, stride, x, n, y, Quant { scale, offset, xs })
            }
            _ => unreachable!("packed input always matches the weight format"),
        }
    }
}

/// Adds `bias` to every `bias.len()`-long vector of `y`.
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (a, b) in row.iter_mut().zip(bias) {
            *a += b;
        }
    }
}

/// Symmetric int8 scale for `src`: returns (scale, 1 / scale).
fn quant_scale(src: &[f32]) -> (f32, f32) {
    let max = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if max > 0.0 && max.is_finite() {
        (max / 127.0, 127.0 / max)
    } else {
        (1.0, 1.0)
    }
}

#[inline(always)]
fn quant_one(v: f32, inv: f32) -> i8 {
    (v * inv).round().clamp(-127.0, 127.0) as i8
}

/// Quantises `src` into `dst` with a symmetric per-slice scale; returns (scale, 1 / scale).
fn quantize_into(src: &[f32], dst: &mut [i8]) -> (f32, f32) {
    let s = quant_scale(src);
    for (d, v) in dst.iter_mut().zip(src) {
        *d = quant_one(*v, s.1);
    }
    s
}

/// Calls `tile(r, R, v, V)` over all rows and vectors in tiles of 4 rows × `VT` vectors, with
/// edge tiles of one row or one vector; each output element is computed by exactly one call.
/// The rows of a tile stay in L1 while the loop runs over the vectors.
#[inline(always)]
fn for_tiles<const VT: usize>(
    rows: usize,
    n: usize,
    mut tile: impl FnMut(usize, usize, usize, usize),
) {
    let mut r = 0;
    while r < rows {
        let rr = if rows - r >= 4 { 4 } else { 1 };
        let mut v = 0;
        while v < n {
            let vv = if n - v >= VT { VT } else { 1 };
            tile(r, rr, v, vv);
            v += vv;
        }
        r += rr;
    }
}

/// Scales that turn an integer accumulator into a float (empty for float formats).
#[derive(Clone, Copy, Default)]
pub(super) struct Quant<'a> {
    /// Per-row weight scale.
    pub scale: &'a [f32],
    /// Per-row correction for unsigned (offset by 128) inputs.
    pub offset: &'a [i32],
    /// Per-vector input scale.
    pub xs: &'a [f32],
}

/// Generates a tile kernel `$name::<R, V>(w, x, stride) -> [[out; V]; R]`: R weight rows times V
/// input vectors, one accumulator register per output, `$step` columns per iteration. Only the
/// loads, the multiply-accumulate and the final horizontal reduction differ between formats and
/// instruction sets; each accumulator sees the same operations in the same order whatever R and V.
macro_rules! tile_kernel {
    (
        $(#[$meta:meta])*
        $name:ident, $features:literal, w: $wty:ty, x: $xty:ty, out: $outty:ty,
        zero: $zero:expr, x_zero: $x_zero:expr, step: $step:literal,
        load_x: |$xp:ident| $load_x:expr,
        load_w: |$wp:ident| $load_w:expr,
        madd: |$acc:ident, $wv:ident, $xj:ident| $madd:expr,
        reduce: |$r:ident| $reduce:expr $(,)?
    ) => {
        $(#[$meta])*
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize, const V: usize>(
            w: *const $wty,
            x: *const $xty,
            stride: usize,
        ) -> [[$outty; V]; R] {
            let mut acc = [[$zero; V]; R];
            let mut k = 0;
            while k < stride {
                // SAFETY: k < stride and the tile's rows and vectors are in bounds (see the
                // driver); the loads read `$step` elements, and stride is a multiple of PAD.
                unsafe {
                    let mut xv = [$x_zero; V];
                    for (j, slot) in xv.iter_mut().enumerate() {
                        let $xp = x.add(j * stride + k);
                        *slot = $load_x;
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        let $wp = w.add(i * stride + k);
                        let $wv = $load_w;
                        for ($acc, $xj) in row.iter_mut().zip(&xv) {
                            *$acc = $madd;
                        }
                    }
                }
                k += $step;
            }
            // Reduced here, not in a closure: closures do not inherit the target features.
            let mut out = [[<$outty>::default(); V]; R];
            for (o, a) in out.iter_mut().zip(&acc) {
                for (o, $r) in o.iter_mut().zip(a) {
                    *o = $reduce;
                }
            }
            out
        }
    };
}
use tile_kernel;

/// Generates a safe driver `$name` that checks the slice sizes, then runs the tiles of
/// `$tile` (an `unsafe fn tile<const R, const V>(w, x, stride) -> [[acc; V]; R]`) over the whole
/// product and stores `$finish` (an expression of `$q`, `$r`, `$v`, `$acc`) for each output.
macro_rules! gemm_driver {
    (
        $name:ident, $imp:ident, $features:literal, $vt:literal, $tile:ident,
        w: $wty:ty, x: $xty:ty,
        finish: |$q:ident, $r:ident, $v:ident, $acc:ident| $finish:expr
    ) => {
        pub(super) fn $name(
            w: &[$wty],
            rows: usize,
            stride: usize,
            x: &[$xty],
            n: usize,
            y: &mut [f32],
            q: super::Quant<'_>,
        ) {
            assert!(w.len() >= rows * stride && x.len() >= n * stride && y.len() >= n * rows);
            assert!(stride % super::PAD == 0);
            // SAFETY: this driver is reached only through an `Isa` value that `Isa::detect`
            // produced after checking the CPU features it needs, and the asserts above keep
            // every tile's reads inside `w` and `x`.
            unsafe { $imp(w, rows, stride, x, n, y, q) }
        }

        #[target_feature(enable = $features)]
        unsafe fn $imp(
            w: &[$wty],
            rows: usize,
            stride: usize,
            x: &[$xty],
            n: usize,
            y: &mut [f32],
            $q: super::Quant<'_>,
        ) {
            super::for_tiles::<$vt>(rows, n, |r0, rr, v0, vv| {
                let (wp, xp) = (w[r0 * stride..].as_ptr(), x[v0 * stride..].as_ptr());
                macro_rules! emit {
                    ($R:literal, $V:literal) => {{
                        // SAFETY: rows r0..r0+rr and vectors v0..v0+vv lie inside the checked
                        // slices, and the caller checked the CPU features.
                        let tile = unsafe { $tile::<$R, $V>(wp, xp, stride) };
                        for (i, row) in tile.iter().enumerate() {
                            for (j, &$acc) in row.iter().enumerate() {
                                let ($r, $v) = (r0 + i, v0 + j);
                                y[$v * rows + $r] = $finish;
                            }
                        }
                    }};
                }
                match (rr, vv) {
                    (4, $vt) => emit!(4, $vt),
                    (4, _) => emit!(4, 1),
                    (_, $vt) => emit!(1, $vt),
                    _ => emit!(1, 1),
                }
            });
        }
    };
}
use gemm_driver;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    fn run(fmt: Format, isa: Isa, w: &[f32], rows: usize, cols: usize, x: &[f32]) -> Vec<f32> {
        let n = x.len() / cols;
        let mut m = Matrix::new(w, rows, cols, fmt, isa, n.max(1));
        let mut y = vec![0.0; n * rows];
        m.matmul(x, &mut y);
        y
    }

    /// Reference for the BF16-dot-product path: inputs rounded to bf16 first.
    fn round_bf16(x: &[f32]) -> Vec<f32> {
        x.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn every_kernel_matches_the_scalar_reference(
            rows in 1usize..70, cols in 1usize..300, n in 1usize..11, seed in any::<u64>()
        ) {
            let w = random(seed, rows * cols, 0.5);
            let x = random(seed ^ 0xABCD, n * cols, 2.0);
            // Bound for float paths: relative to the sum of |w·x| of the row.
            let mag: Vec<f32> = (0..n * rows).map(|i| {
                let (v, r) = (i / rows, i % rows);
                (0..cols).map(|c| (w[r * cols + c] * x[v * cols + c]).abs()).sum::<f32>()
            }).collect();
            for fmt in [Format::F32, Format::Bf16, Format::Int8] {
                for isa in Isa::available() {
                    let got = run(fmt, isa, &w, rows, cols, &x);
                    let want = if fmt == Format::Bf16 && matches!(isa, Isa::Avx512 { bf16: true, .. }) {
                        run(fmt, Isa::Scalar, &w, rows, cols, &round_bf16(&x))
                    } else {
                        run(fmt, Isa::Scalar, &w, rows, cols, &x)
                    };
                    for i in 0..got.len() {
                        if fmt == Format::Int8 {
                            // Integer accumulation is exact: every path gives the same bits.
                            prop_assert_eq!(got[i].to_bits(), want[i].to_bits(), "{:?} {} at {}", fmt, isa.name(), i);
                        } else {
                            let tol = 2e-6 * mag[i] + 1e-6;
                            prop_assert!((got[i] - want[i]).abs() <= tol,
                                "{:?} {} at {}: {} vs {}", fmt, isa.name(), i, got[i], want[i]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_vector_gives_the_same_bits_alone_or_in_any_batch() {
        let (rows, cols) = (37, 131);
        let w = random(1, rows * cols, 0.5);
        let x = random(2, 9 * cols, 1.0);
        for fmt in [Format::F32, Format::Bf16, Format::Int8] {
            for isa in Isa::available() {
                let all = run(fmt, isa, &w, rows, cols, &x);
                for v in 0..9 {
                    let one = run(fmt, isa, &w, rows, cols, &x[v * cols..(v + 1) * cols]);
                    assert_eq!(one, all[v * rows..(v + 1) * rows], "{fmt:?} {}", isa.name());
                }
            }
        }
    }

    #[test]
    fn reduced_formats_stay_close_to_f32() {
        let (rows, cols) = (256, 512);
        let w = random(3, rows * cols, 0.1);
        let x = random(4, cols, 1.0);
        let exact = run(Format::F32, Isa::Scalar, &w, rows, cols, &x);
        let norm = exact.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (fmt, bound) in [(Format::Bf16, 0.01), (Format::Int8, 0.03)] {
            let got = run(fmt, Isa::detect(), &w, rows, cols, &x);
            let err = got
                .iter()
                .zip(&exact)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= bound * norm,
                "{fmt:?}: error {err} against output scale {norm}"
            );
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(bf16_to_f32(f32_to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(
            bf16_to_f32(f32_to_bf16(1.0 + 3.0 / 256.0)),
            1.0 + 4.0 / 256.0
        );
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
        assert_eq!(bf16_to_f32(f32_to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn zero_and_non_finite_inputs_do_not_break_quantisation() {
        let w = random(5, 8 * 10, 1.0);
        for isa in Isa::available() {
            let y = run(Format::Int8, isa, &w, 8, 10, &[0.0; 10]);
            assert!(y.iter().all(|v| *v == 0.0));
        }
    }
}

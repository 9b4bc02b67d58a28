//! The fused LSTM cell update, compiled for each instruction-set level so that the element loop
//! vectorises. Every level runs the same operations in the same order (no FMA contraction), so
//! they agree bit for bit with the scalar reference; a test checks it.

use super::Isa;
use super::activation::{sigmoid, tanh};

/// For each unit j: with gate pre-activations `z = gx + gh` in PyTorch's order (i, f, g, o),
/// `c[j] = σ(f)·c[j] + σ(i)·tanh(g)` and `h[j] = σ(o)·tanh(c[j])`.
#[inline(always)]
fn body(gx: &[f32], gh: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = c.len();
    let (gxi, rest) = gx.split_at(n);
    let (gxf, rest) = rest.split_at(n);
    let (gxg, gxo) = rest.split_at(n);
    let (ghi, rest) = gh.split_at(n);
    let (ghf, rest) = rest.split_at(n);
    let (ghg, gho) = rest.split_at(n);
    let h = &mut h[..n];
    let (gxo, gho) = (&gxo[..n], &gho[..n]);
    for j in 0..n {
        let i = sigmoid(gxi[j] + ghi[j]);
        let f = sigmoid(gxf[j] + ghf[j]);
        let g = tanh(gxg[j] + ghg[j]);
        let o = sigmoid(gxo[j] + gho[j]);
        let cj = f * c[j] + i * g;
        c[j] = cj;
        h[j] = o * tanh(cj);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
fn body_avx512(gx: &[f32], gh: &[f32], c: &mut [f32], h: &mut [f32]) {
    body(gx, gh, c, h)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn body_avx2(gx: &[f32], gh: &[f32], c: &mut [f32], h: &mut [f32]) {
    body(gx, gh, c, h)
}

/// Runs the cell update for one stream: `gx` and `gh` hold 4·H pre-activations, `c` and `h`
/// hold H values each.
///
/// # Panics
/// If the lengths disagree (a programming error; the LSTM checks shapes at its API).
pub fn lstm_cell(isa: Isa, gx: &[f32], gh: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = c.len();
    assert!(gx.len() >= 4 * n && gh.len() >= 4 * n && h.len() >= n);
    match isa {
        Isa::Scalar => body(gx, gh, c, h),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only produced after detecting these features.
        Isa::Avx512 { .. } => unsafe { body_avx512(gx, gh, c, h) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only produced after detecting AVX2 and FMA.
        Isa::Avx2 => unsafe { body_avx2(gx, gh, c, h) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_matches_the_scalar_cell_bit_for_bit() {
        for n in [1usize, 7, 16, 33, 130, 512] {
            let gx: Vec<f32> = (0..4 * n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.13)
                .collect();
            let gh: Vec<f32> = (0..4 * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.07)
                .collect();
            let c0: Vec<f32> = (0..n).map(|i| ((i * 11 % 13) as f32 - 6.0) * 0.4).collect();
            let (mut c_ref, mut h_ref) = (c0.clone(), vec![0.0; n]);
            lstm_cell(Isa::Scalar, &gx, &gh, &mut c_ref, &mut h_ref);
            for isa in Isa::available() {
                let (mut c, mut h) = (c0.clone(), vec![0.0; n]);
                lstm_cell(isa, &gx, &gh, &mut c, &mut h);
                assert_eq!(c, c_ref, "{}", isa.name());
                assert_eq!(h, h_ref, "{}", isa.name());
            }
        }
    }

    #[test]
    fn the_cell_matches_the_textbook_formula() {
        let n = 3;
        let gx = [
            0.5, -1.0, 2.0, 0.1, 0.2, 0.3, -0.4, 1.5, 0.0, 0.7, -2.0, 0.9,
        ];
        let gh = [0.1; 12];
        let mut c = [0.3, -0.2, 0.8];
        let c0 = c;
        let mut h = [0.0; 3];
        lstm_cell(Isa::detect(), &gx, &gh, &mut c, &mut h);
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        for j in 0..n {
            let z = |k: usize| (gx[k * n + j] + gh[k * n + j]) as f64;
            let cj = s(z(1)) * c0[j] as f64 + s(z(0)) * z(2).tanh();
            assert!((c[j] as f64 - cj).abs() < 1e-6);
            assert!((h[j] as f64 - s(z(3)) * cj.tanh()).abs() < 1e-6);
        }
    }
}

//! The reference kernels: plain loops, one output element at a time, in column order.

use super::{Quant, bf16_to_f32};

/// Runs `dot(r, v)` for every output element.
fn each(rows: usize, n: usize, y: &mut [f32], mut dot: impl FnMut(usize, usize) -> f32) {
    for v in 0..n {
        for r in 0..rows {
            y[v * rows + r] = dot(r, v);
        }
    }
}

pub(super) fn f32(
    w: &[f32],
    rows: usize,
    stride: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    _: Quant<'_>,
) {
    each(rows, n, y, |r, v| {
        let (wr, xv) = (&w[r * stride..][..stride], &x[v * stride..][..stride]);
        wr.iter().zip(xv).map(|(a, b)| a * b).sum()
    });
}

pub(super) fn bf16(
    w: &[u16],
    rows: usize,
    stride: usize,
    x: &[f32],
    n: usize,
    y: &mut [f32],
    _: Quant<'_>,
) {
    each(rows, n, y, |r, v| {
        let (wr, xv) = (&w[r * stride..][..stride], &x[v * stride..][..stride]);
        wr.iter().zip(xv).map(|(a, b)| bf16_to_f32(*a) * b).sum()
    });
}

pub(super) fn int8(
    w: &[i8],
    rows: usize,
    stride: usize,
    x: &[i16],
    n: usize,
    y: &mut [f32],
    q: Quant<'_>,
) {
    each(rows, n, y, |r, v| {
        let (wr, xv) = (&w[r * stride..][..stride], &x[v * stride..][..stride]);
        let acc: i32 = wr.iter().zip(xv).map(|(a, b)| *a as i32 * *b as i32).sum();
        acc as f32 * q.scale[r] * q.xs[v]
    });
}

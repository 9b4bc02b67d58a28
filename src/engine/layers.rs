//! Layers around the LSTM stack: linear, layer norm, ReLU, log-softmax and the NADE output
//! distribution. Each preallocates at construction and works in caller-provided buffers.

use super::error::{EngineError, check_len};
use super::kernels::activation::sigmoid;
use super::kernels::{Format, Isa, Matrix, add_bias};
use super::weights::{LayerConfig, Model};

/// `y = W x + b` for up to `max_batch` vectors per call.
pub struct Linear {
    w: Matrix,
    bias: Vec<f32>,
}

impl Linear {
    /// From PyTorch-layout weights (`out × in`) and bias (`out`).
    ///
    /// # Panics
    /// If the slices do not match the sizes.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        inputs: usize,
        format: Format,
        isa: Isa,
        max_batch: usize,
    ) -> Linear {
        assert_eq!(weight.len(), bias.len() * inputs);
        Linear {
            w: Matrix::new(weight, bias.len(), inputs, format, isa, max_batch),
            bias: bias.to_vec(),
        }
    }

    /// The `linear` layer called `name` of a loaded model.
    pub fn from_model(
        model: &Model,
        name: &str,
        format: Format,
        isa: Isa,
        max_batch: usize,
    ) -> Option<Linear> {
        let LayerConfig::Linear { in_features, .. } = model.layer(name)? else {
            return None;
        };
        Some(Linear::new(
            &model.tensor(&format!("{name}.weight")).data,
            &model.tensor(&format!("{name}.bias")).data,
            *in_features,
            format,
            isa,
            max_batch,
        ))
    }

    /// Another layer over the same weights (shared, not copied) for up to `max_batch`
    /// vectors per call.
    pub fn share(&self, max_batch: usize) -> Linear {
        Linear {
            w: self.w.share(max_batch),
            bias: self.bias.clone(),
        }
    }

    /// Input size.
    pub fn inputs(&self) -> usize {
        self.w.cols()
    }

    /// Output size.
    pub fn outputs(&self) -> usize {
        self.w.rows()
    }

    /// `x` holds n input vectors, `y` receives n output vectors.
    pub fn forward_into(&mut self, x: &[f32], y: &mut [f32]) -> Result<(), EngineError> {
        let n = x.len() / self.inputs();
        check_len("linear input", n * self.inputs(), x.len())?;
        check_len("linear output", n * self.outputs(), y.len())?;
        if n > self.w.max_batch() {
            return Err(EngineError::TooMany {
                what: "vectors per linear call",
                max: self.w.max_batch(),
                actual: n,
            });
        }
        self.w.matmul(x, y);
        add_bias(y, &self.bias);
        Ok(())
    }
}

/// Layer normalisation over each vector, with learned gain and bias.
pub struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// From gain, bias and epsilon.
    pub fn new(weight: &[f32], bias: &[f32], eps: f32) -> LayerNorm {
        LayerNorm {
            weight: weight.to_vec(),
            bias: bias.to_vec(),
            eps,
        }
    }

    /// The `layer_norm` layer called `name` of a loaded model.
    pub fn from_model(model: &Model, name: &str) -> Option<LayerNorm> {
        let LayerConfig::LayerNorm { eps, .. } = model.layer(name)? else {
            return None;
        };
        Some(LayerNorm::new(
            &model.tensor(&format!("{name}.weight")).data,
            &model.tensor(&format!("{name}.bias")).data,
            *eps,
        ))
    }

    /// Normalises each `size`-long vector of `x` in place.
    pub fn forward_in_place(&self, x: &mut [f32]) -> Result<(), EngineError> {
        let n = self.weight.len();
        check_len("layer norm input", x.len() / n * n, x.len())?;
        for v in x.chunks_exact_mut(n) {
            let mean = v.iter().sum::<f32>() / n as f32;
            let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f32>() / n as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((a, g), b) in v.iter_mut().zip(&self.weight).zip(&self.bias) {
                *a = (*a - mean) * inv * g + b;
            }
        }
        Ok(())
    }
}

/// `max(x, 0)` in place.
pub fn relu_in_place(x: &mut [f32]) {
    for a in x {
        *a = a.max(0.0);
    }
}

/// `x - log Σ exp x` over each `size`-long vector of `x`, in place.
pub fn log_softmax_in_place(x: &mut [f32], size: usize) -> Result<(), EngineError> {
    if size == 0 {
        return check_len("log-softmax input", 0, x.len());
    }
    check_len("log-softmax input", x.len() / size * size, x.len())?;
    for v in x.chunks_exact_mut(size) {
        let max = v.iter().fold(f32::NEG_INFINITY, |m, a| m.max(*a));
        let sum: f32 = v.iter().map(|a| (a - max).exp()).sum();
        let lse = max + sum.ln();
        for a in v {
            *a -= lse;
        }
    }
    Ok(())
}

/// `log(1 + e^x)` without overflow.
fn softplus(x: f32) -> f32 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// A NADE over a frame's N binary variables, conditioned on a vector `s` (see
/// `docs/model-format.md`): `h_i = σ(c + W[:, <i]·v_<i)`, `p(v_i = 1) = σ(b_i + V[i]·h_i)`,
/// with `b = b_proj(s)` and `c = c_proj(s)`.
pub struct Nade {
    b_proj: Linear,
    c_proj: Linear,
    /// W transposed: row j is column j of W (Hn values), added when v_j = 1.
    w_t: Vec<f32>,
    /// V: row i (Hn values) gives the logit of v_i.
    v: Vec<f32>,
    visible: usize,
    hidden: usize,
    b: Vec<f32>,
    a: Vec<f32>,
    h: Vec<f32>,
}

impl Nade {
    /// From the tensors of docs/model-format.md (`W`: Hn × N, `V`: N × Hn; projections from
    /// `cond` inputs).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w: &[f32],
        v: &[f32],
        b_proj: (&[f32], &[f32]),
        c_proj: (&[f32], &[f32]),
        visible: usize,
        hidden: usize,
        cond: usize,
        isa: Isa,
    ) -> Nade {
        assert!(w.len() == hidden * visible && v.len() == visible * hidden);
        let mut w_t = vec![0.0; visible * hidden];
        for r in 0..hidden {
            for j in 0..visible {
                w_t[j * hidden + r] = w[r * visible + j];
            }
        }
        Nade {
            b_proj: Linear::new(b_proj.0, b_proj.1, cond, Format::F32, isa, 1),
            c_proj: Linear::new(c_proj.0, c_proj.1, cond, Format::F32, isa, 1),
            w_t,
            v: v.to_vec(),
            visible,
            hidden,
            b: vec![0.0; visible],
            a: vec![0.0; hidden],
            h: vec![0.0; hidden],
        }
    }

    /// The `nade` layer called `name` of a loaded model.
    pub fn from_model(model: &Model, name: &str, isa: Isa) -> Option<Nade> {
        let LayerConfig::Nade {
            visible,
            hidden,
            cond_size,
            ..
        } = model.layer(name)?
        else {
            return None;
        };
        let t = |s: &str| &model.tensor(&format!("{name}.{s}")).data[..];
        Some(Nade::new(
            t("W"),
            t("V"),
            (t("b_proj.weight"), t("b_proj.bias")),
            (t("c_proj.weight"), t("c_proj.bias")),
            *visible,
            *hidden,
            *cond_size,
            isa,
        ))
    }

    /// Number of binary variables per frame.
    pub fn visible(&self) -> usize {
        self.visible
    }

    fn condition(&mut self, cond: &[f32]) -> Result<(), EngineError> {
        self.b_proj.forward_into(cond, &mut self.b)?;
        self.c_proj.forward_into(cond, &mut self.a)?;
        Ok(())
    }

    /// Logit of variable `i` given the current hidden pre-activation `a`.
    fn logit(&mut self, i: usize) -> f32 {
        for (h, a) in self.h.iter_mut().zip(&self.a) {
            *h = sigmoid(*a);
        }
        let row = &self.v[i * self.hidden..(i + 1) * self.hidden];
        self.b[i] + row.iter().zip(&self.h).map(|(w, h)| w * h).sum::<f32>()
    }

    fn observe(&mut self, i: usize) {
        let col = &self.w_t[i * self.hidden..(i + 1) * self.hidden];
        for (a, w) in self.a.iter_mut().zip(col) {
            *a += w;
        }
    }

    /// `-ln p(frame | cond)`, natural log; `frame[i]` is true when variable i is on.
    pub fn neg_log_prob(&mut self, cond: &[f32], frame: &[bool]) -> Result<f64, EngineError> {
        check_len("nade frame", self.visible, frame.len())?;
        self.condition(cond)?;
        let mut nll = 0.0f64;
        for (i, &on) in frame.iter().enumerate() {
            let z = self.logit(i);
            // -ln σ(z) = softplus(-z); -ln(1 - σ(z)) = softplus(z).
            nll += softplus(if on { -z } else { z }) as f64;
            if on {
                self.observe(i);
            }
        }
        Ok(nll)
    }

    /// Samples a frame into `frame`, one variable at a time. Each variable's logit is divided by
    /// `temperature`; with `top_p < 1`, an outcome whose probability reaches `top_p` is taken
    /// without drawing (nucleus sampling on each binary conditional). `allow(i, frame[..i])`
    /// may forbid a variable (it is then off); `uniform()` must return values in [0, 1).
    pub fn sample_into(
        &mut self,
        cond: &[f32],
        sampling: Sampling,
        mut allow: impl FnMut(usize, &[bool]) -> bool,
        mut uniform: impl FnMut() -> f32,
        frame: &mut [bool],
    ) -> Result<(), EngineError> {
        check_len("nade frame", self.visible, frame.len())?;
        self.condition(cond)?;
        let inv_t = 1.0 / sampling.temperature.max(1e-3);
        for i in 0..self.visible {
            let on = allow(i, &frame[..i]) && {
                let p = sigmoid(self.logit(i) * inv_t);
                if p >= sampling.top_p {
                    true
                } else if 1.0 - p >= sampling.top_p {
                    false
                } else {
                    uniform() < p
                }
            };
            frame[i] = on;
            if on {
                self.observe(i);
            }
        }
        Ok(())
    }
}

/// How [`Nade::sample_into`] draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides every logit: below 1 sharpens, above 1 flattens.
    pub temperature: f32,
    /// Nucleus threshold in (0.5, 1]; 1 samples every variable.
    pub top_p: f32,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            temperature: 1.0,
            top_p: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nade(n: usize, hn: usize, c: usize) -> Nade {
        let w: Vec<f32> = (0..hn * n)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let v: Vec<f32> = (0..n * hn)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.25)
            .collect();
        let bw: Vec<f32> = (0..n * c)
            .map(|i| ((i * 3 % 7) as f32 - 3.0) * 0.2)
            .collect();
        let cw: Vec<f32> = (0..hn * c)
            .map(|i| ((i * 11 % 5) as f32 - 2.0) * 0.2)
            .collect();
        let bb: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 0.2).collect();
        let cb: Vec<f32> = (0..hn).map(|i| 0.05 * i as f32).collect();
        Nade::new(&w, &v, (&bw, &bb), (&cw, &cb), n, hn, c, Isa::detect())
    }

    #[test]
    fn nade_probabilities_of_all_frames_sum_to_one() {
        let (n, hn, c) = (5, 4, 3);
        let mut m = nade(n, hn, c);
        let cond = [0.3, -0.7, 1.1];
        let mut total = 0.0;
        for bits in 0u32..(1 << n) {
            let frame: Vec<bool> = (0..n).map(|i| bits >> i & 1 == 1).collect();
            total += (-m.neg_log_prob(&cond, &frame).unwrap()).exp();
        }
        assert!((total - 1.0).abs() < 1e-5, "sum of probabilities {total}");
    }

    #[test]
    fn nade_matches_the_formula_in_f64() {
        let (n, hn, c) = (6, 3, 2);
        let mut m = nade(n, hn, c);
        let cond = [0.4f32, -0.2];
        let frame = [true, false, true, true, false, true];
        let got = m.neg_log_prob(&cond, &frame).unwrap();
        let w: Vec<f64> = (0..hn * n)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3)
            .collect();
        let v: Vec<f64> = (0..n * hn)
            .map(|i| ((i * 5 % 13) as f64 - 6.0) * 0.25)
            .collect();
        let s = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut nll = 0.0;
        for i in 0..n {
            let b = (0..c)
                .map(|k| (((i * c + k) * 3 % 7) as f64 - 3.0) * 0.2)
                .zip(&cond)
                .map(|(wk, x)| wk * *x as f64)
                .sum::<f64>()
                + (i as f64 * 0.1 - 0.2);
            let h: Vec<f64> = (0..hn)
                .map(|r| {
                    let cr = (0..c)
                        .map(|k| (((r * c + k) * 11 % 5) as f64 - 2.0) * 0.2 * cond[k] as f64)
                        .sum::<f64>()
                        + 0.05 * r as f64;
                    s(cr + (0..i)
                        .filter(|&j| frame[j])
                        .map(|j| w[r * n + j])
                        .sum::<f64>())
                })
                .collect();
            let p = s(b + (0..hn).map(|r| v[i * hn + r] * h[r]).sum::<f64>());
            nll -= if frame[i] { p.ln() } else { (1.0 - p).ln() };
        }
        assert!((got - nll).abs() < 1e-5, "{got} vs {nll}");
    }

    #[test]
    fn log_softmax_normalises() {
        let mut x = [1.0, 2.0, 3.0, -1000.0, 0.0, 1000.0];
        log_softmax_in_place(&mut x, 3).unwrap();
        for v in x.chunks(3) {
            let s: f32 = v.iter().map(|a| a.exp()).sum();
            assert!((s - 1.0).abs() < 1e-6);
        }
        assert!(log_softmax_in_place(&mut x, 4).is_err());
    }
}

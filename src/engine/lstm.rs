//! A stack of LSTM layers with PyTorch's semantics (gate order i, f, g, o; both bias vectors).
//!
//! Weights are shared and states are separate: one [`LstmState`] per stream, so one
//! [`LstmStack`] serves any number of streams. [`LstmStack::step_into`] advances up to
//! `max_batch` streams by one frame, reading each weight row once for the whole batch;
//! [`LstmStack::forward_chunk_into`] runs T frames of one stream, computing the input
//! projections of a block of frames as one matrix product, layer by layer. All scratch space is
//! allocated by [`LstmStack::new`]; neither call allocates.
//!
//! Both calls do the same arithmetic per frame (`(W_ih·x + b_ih + b_hh) + W_hh·h`, then the
//! cell), and the kernels compute a vector's product independently of its batch, so streaming,
//! chunked and batched runs give identical bits.
//!
//! Accuracy against PyTorch (`tests/engine_parity.rs`, golden files from
//! `models/training/engine_golden.py`, 200 steps, weights up to 4× PyTorch's initial scale):
//!
//! | weight format | documented bound (max abs error of h) | measured worst |
//! |---|---|---|
//! | f32 | 1e-5 | below 1e-5 on every kernel level |
//! | bf16 | 0.03 | 0.013 (inputs f32), 0.022 (AVX-512 BF16: inputs rounded to bf16 too) |
//! | int8, per-row scales | 0.06 | 0.035 |

use std::borrow::BorrowMut;

use super::error::{EngineError, check_len};
use super::kernels::{Format, Isa, Matrix, add_bias, lstm_cell};
use super::weights::{LayerConfig, Model};

struct Layer {
    w_ih: Matrix,
    w_hh: Matrix,
    bias: Vec<f32>,
}

impl Layer {
    /// `gx = W_ih·x + (b_ih + b_hh)` for every vector of `x`.
    fn project(&mut self, x: &[f32], gx: &mut [f32]) {
        self.w_ih.matmul(x, gx);
        add_bias(gx, &self.bias);
    }
}

/// Layer k reads the buffer layer k−1 wrote and writes the other one.
fn ping_pong(act: &mut [Vec<f32>; 2], k: usize) -> (&[f32], &mut [f32]) {
    let [a, b] = act;
    if k.is_multiple_of(2) { (a, b) } else { (b, a) }
}

/// The weights of an LSTM stack plus scratch space for one call at a time.
pub struct LstmStack {
    layers: Vec<Layer>,
    input: usize,
    hidden: usize,
    max_batch: usize,
    max_chunk: usize,
    isa: Isa,
    format: Format,
    gx: Vec<f32>,
    gh: Vec<f32>,
    h_in: Vec<f32>,
    act: [Vec<f32>; 2],
}

/// The recurrent state of one stream: h and c of every layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmState {
    h: Vec<f32>,
    c: Vec<f32>,
}

impl LstmState {
    /// A state of no layers, for tests that never step it.
    #[cfg(test)]
    pub(crate) fn empty() -> LstmState {
        LstmState {
            h: Vec::new(),
            c: Vec::new(),
        }
    }

    /// Back to the initial (all-zero) state.
    pub fn reset(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
    }

    /// h of all layers, layer after layer.
    pub fn h(&self) -> &[f32] {
        &self.h
    }

    /// c of all layers, layer after layer.
    pub fn c(&self) -> &[f32] {
        &self.c
    }
}

/// Weights of one layer as f32 slices in PyTorch's layout.
pub struct LayerWeights<'a> {
    /// `weight_ih_l{k}`, 4H × in.
    pub w_ih: &'a [f32],
    /// `weight_hh_l{k}`, 4H × H.
    pub w_hh: &'a [f32],
    /// `bias_ih_l{k}`, 4H.
    pub b_ih: &'a [f32],
    /// `bias_hh_l{k}`, 4H.
    pub b_hh: &'a [f32],
}

/// Construction limits of an [`LstmStack`].
#[derive(Clone, Copy, Debug)]
pub struct StackOptions {
    /// Weight format at run time.
    pub format: Format,
    /// Kernel level (normally [`Isa::detect`]).
    pub isa: Isa,
    /// Most streams per `step_into` call.
    pub max_batch: usize,
    /// Frames per input-projection block in `forward_chunk_into` (any T is accepted).
    pub max_chunk: usize,
}

impl StackOptions {
    /// The given format on this CPU's best kernels, with the given batch limit and a
    /// 32-frame chunk.
    pub fn new(format: Format, max_batch: usize) -> StackOptions {
        StackOptions {
            format,
            isa: Isa::detect(),
            max_batch,
            max_chunk: 32,
        }
    }
}

impl LstmStack {
    /// Builds a stack from per-layer weights.
    ///
    /// # Panics
    /// If the slices do not match `input` and `hidden` or a limit is zero; [`from_model`]
    /// validates files before calling this.
    ///
    /// [`from_model`]: LstmStack::from_model
    pub fn new(
        input: usize,
        hidden: usize,
        weights: &[LayerWeights<'_>],
        opts: StackOptions,
    ) -> LstmStack {
        assert!(opts.max_batch > 0 && opts.max_chunk > 0 && !weights.is_empty());
        let g = 4 * hidden;
        let rows_in = opts.max_batch.max(opts.max_chunk);
        let layers = weights
            .iter()
            .enumerate()
            .map(|(k, lw)| {
                let cols = if k == 0 { input } else { hidden };
                assert!(lw.b_ih.len() == g && lw.b_hh.len() == g);
                Layer {
                    w_ih: Matrix::new(lw.w_ih, g, cols, opts.format, opts.isa, rows_in),
                    w_hh: Matrix::new(lw.w_hh, g, hidden, opts.format, opts.isa, opts.max_batch),
                    bias: lw.b_ih.iter().zip(lw.b_hh).map(|(a, b)| a + b).collect(),
                }
            })
            .collect();
        LstmStack {
            layers,
            input,
            hidden,
            max_batch: opts.max_batch,
            max_chunk: opts.max_chunk,
            isa: opts.isa,
            format: opts.format,
            gx: vec![0.0; rows_in * g],
            gh: vec![0.0; opts.max_batch * g],
            h_in: vec![0.0; opts.max_batch * hidden],
            act: [vec![0.0; rows_in * hidden], vec![0.0; rows_in * hidden]],
        }
    }

    /// Another stack over the same weights (shared, not copied) with its own scratch space for
    /// up to `max_batch` streams per step: one per inference thread, or one per owner that
    /// steps on its own.
    ///
    /// # Panics
    /// If `max_batch` is zero.
    pub fn share(&self, max_batch: usize) -> LstmStack {
        assert!(max_batch > 0, "a stack needs room for at least one stream");
        let g = 4 * self.hidden;
        let rows_in = max_batch.max(self.max_chunk);
        LstmStack {
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    w_ih: l.w_ih.share(rows_in),
                    w_hh: l.w_hh.share(max_batch),
                    bias: l.bias.clone(),
                })
                .collect(),
            input: self.input,
            hidden: self.hidden,
            max_batch,
            max_chunk: self.max_chunk,
            isa: self.isa,
            format: self.format,
            gx: vec![0.0; rows_in * g],
            gh: vec![0.0; max_batch * g],
            h_in: vec![0.0; max_batch * self.hidden],
            act: [
                vec![0.0; rows_in * self.hidden],
                vec![0.0; rows_in * self.hidden],
            ],
        }
    }

    /// Builds the stack of the `lstm` layer called `name` in a loaded model.
    pub fn from_model(model: &Model, name: &str, opts: StackOptions) -> Option<LstmStack> {
        let LayerConfig::Lstm {
            input_size,
            hidden_size,
            num_layers,
            ..
        } = model.layer(name)?
        else {
            return None;
        };
        let t = |s: String| &model.tensor(&s).data[..];
        let weights: Vec<LayerWeights<'_>> = (0..*num_layers)
            .map(|k| LayerWeights {
                w_ih: t(format!("{name}.weight_ih_l{k}")),
                w_hh: t(format!("{name}.weight_hh_l{k}")),
                b_ih: t(format!("{name}.bias_ih_l{k}")),
                b_hh: t(format!("{name}.bias_hh_l{k}")),
            })
            .collect();
        Some(LstmStack::new(*input_size, *hidden_size, &weights, opts))
    }

    /// A fresh (all-zero) state for one stream.
    pub fn new_state(&self) -> LstmState {
        let n = self.layers.len() * self.hidden;
        LstmState {
            h: vec![0.0; n],
            c: vec![0.0; n],
        }
    }

    /// Input size.
    pub fn input_size(&self) -> usize {
        self.input
    }

    /// Output (hidden) size.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Most streams per step.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Weight format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Kernel level.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Bytes of weights read per step.
    pub fn weight_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.w_ih.weight_bytes() + l.w_hh.weight_bytes())
            .sum()
    }

    /// Multiply-adds per stream and frame.
    pub fn macs_per_frame(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.w_ih.rows() * (l.w_ih.cols() + l.w_hh.cols()))
            .sum()
    }

    fn check_state(&self, s: &LstmState) -> Result<(), EngineError> {
        let n = self.layers.len() * self.hidden;
        if s.h.len() != n || s.c.len() != n {
            return Err(EngineError::ForeignState {
                expected: n,
                actual: s.h.len(),
            });
        }
        Ok(())
    }

    /// Advances `states.len()` streams by one frame: `input` holds one frame per stream
    /// (B × input_size), `output` receives the top layer's h per stream (B × hidden_size).
    pub fn step_into<S: BorrowMut<LstmState>>(
        &mut self,
        states: &mut [S],
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), EngineError> {
        let b = states.len();
        if b > self.max_batch {
            return Err(EngineError::TooMany {
                what: "streams per step",
                max: self.max_batch,
                actual: b,
            });
        }
        check_len("step input", b * self.input, input.len())?;
        check_len("step output", b * self.hidden, output.len())?;
        for s in states.iter() {
            self.check_state(s.borrow())?;
        }
        let (h, g) = (self.hidden, 4 * self.hidden);
        let nl = self.layers.len();
        for (k, layer) in self.layers.iter_mut().enumerate() {
            let (src, dst) = ping_pong(&mut self.act, k);
            let x = if k == 0 { input } else { &src[..b * h] };
            let gx = &mut self.gx[..b * g];
            layer.project(x, gx);
            for (j, s) in states.iter().enumerate() {
                self.h_in[j * h..(j + 1) * h].copy_from_slice(&s.borrow().h[k * h..(k + 1) * h]);
            }
            let gh = &mut self.gh[..b * g];
            layer.w_hh.matmul(&self.h_in[..b * h], gh);
            let out: &mut [f32] = if k + 1 == nl {
                output
            } else {
                &mut dst[..b * h]
            };
            for (j, s) in states.iter_mut().enumerate() {
                let s = s.borrow_mut();
                let (hs, cs) = (&mut s.h[k * h..(k + 1) * h], &mut s.c[k * h..(k + 1) * h]);
                lstm_cell(
                    self.isa,
                    &gx[j * g..(j + 1) * g],
                    &gh[j * g..(j + 1) * g],
                    cs,
                    hs,
                );
                out[j * h..(j + 1) * h].copy_from_slice(hs);
            }
        }
        Ok(())
    }

    /// Runs T = `input.len() / input_size` frames of one stream: `output` receives the top
    /// layer's h for every frame (T × hidden_size). Any T is accepted; the input projections
    /// are computed `max_chunk` frames at a time.
    pub fn forward_chunk_into(
        &mut self,
        state: &mut LstmState,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<(), EngineError> {
        self.check_state(state)?;
        if !input.len().is_multiple_of(self.input) {
            return Err(EngineError::WrongLength {
                what: "chunk input (a whole number of frames)",
                expected: input.len() / self.input * self.input,
                actual: input.len(),
            });
        }
        let t_all = input.len() / self.input;
        check_len("chunk output", t_all * self.hidden, output.len())?;
        let (h, g) = (self.hidden, 4 * self.hidden);
        let nl = self.layers.len();
        let mut t0 = 0;
        while t0 < t_all {
            let tc = (t_all - t0).min(self.max_chunk);
            for (k, layer) in self.layers.iter_mut().enumerate() {
                let (src, dst) = ping_pong(&mut self.act, k);
                let x = if k == 0 {
                    &input[t0 * self.input..(t0 + tc) * self.input]
                } else {
                    &src[..tc * h]
                };
                let gx = &mut self.gx[..tc * g];
                layer.project(x, gx);
                let out: &mut [f32] = if k + 1 == nl {
                    &mut output[t0 * h..(t0 + tc) * h]
                } else {
                    &mut dst[..tc * h]
                };
                let (hs, cs) = (
                    &mut state.h[k * h..(k + 1) * h],
                    &mut state.c[k * h..(k + 1) * h],
                );
                let gh = &mut self.gh[..g];
                for t in 0..tc {
                    layer.w_hh.matmul(hs, gh);
                    lstm_cell(self.isa, &gx[t * g..(t + 1) * g], gh, cs, hs);
                    out[t * h..(t + 1) * h].copy_from_slice(hs);
                }
            }
            t0 += tc;
        }
        Ok(())
    }
}

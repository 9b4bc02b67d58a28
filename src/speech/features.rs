//! The streaming log-mel front end, identical to the training one
//! (`models/training/speech/common.py`: `log_mel`, `stack_frames`).
//!
//! Frame t covers samples `[t·hop, t·hop + win)` (no padding). The frame, optionally
//! pre-emphasised, times a periodic Hann window, zero-padded to `n_fft`, goes through a real FFT;
//! the power spectrum goes through triangular HTK mel filters (peak 1, no area normalisation);
//! `ln(max(mel, floor))` is normalised per band with the model's mean and standard deviation, and
//! `stack` consecutive frames every `stride` frames are concatenated into one model step.
//!
//! The FFT is planned and every buffer sized in [`FrontEnd::new`]; [`FrontEnd::push`] does not
//! allocate. The arithmetic runs in f64 like the reference, so chunking cannot change a value and
//! the result matches the training code to about 1e-6.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Front-end parameters (the `speech` section of a model config).
#[derive(Clone, Debug, PartialEq)]
pub struct FrontEndConfig {
    /// Input rate in Hz.
    pub sample_rate: u32,
    /// `x[n] - a·x[n-1]` before windowing (0 for none).
    pub pre_emphasis: f32,
    /// Window (frame) length in samples.
    pub win_length: usize,
    /// Hop between frames in samples.
    pub hop_length: usize,
    /// FFT length (≥ `win_length`).
    pub n_fft: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// Lowest filter corner in Hz.
    pub fmin: f64,
    /// Highest filter corner in Hz.
    pub fmax: f64,
    /// Floor under the mel power before the logarithm.
    pub log_floor: f64,
    /// Per-band mean subtracted from the log-mel value.
    pub feature_mean: Vec<f32>,
    /// Per-band standard deviation dividing the centred value.
    pub feature_std: Vec<f32>,
    /// Frames per step.
    pub stack: usize,
    /// Frames between the first frames of consecutive steps.
    pub stride: usize,
}

impl FrontEndConfig {
    /// Values per step given to the acoustic model.
    pub fn step_size(&self) -> usize {
        self.stack * self.n_mels
    }

    /// Seconds between consecutive steps.
    pub fn step_seconds(&self) -> f64 {
        (self.stride * self.hop_length) as f64 / self.sample_rate as f64
    }

    /// Checks that the numbers make a usable front end.
    pub fn validate(&self) -> Result<(), String> {
        if self.sample_rate == 0 || self.win_length == 0 || self.hop_length == 0 {
            return Err("sample_rate, win_length and hop_length must be positive".into());
        }
        if self.n_fft < self.win_length || self.n_fft > 1 << 16 {
            return Err(format!(
                "n_fft {} must be at least win_length {} and at most 65536",
                self.n_fft, self.win_length
            ));
        }
        if self.n_mels == 0 || self.stack == 0 || self.stride == 0 {
            return Err("n_mels, stack and stride must be positive".into());
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        if !(self.fmin >= 0.0 && self.fmin < self.fmax && self.fmax <= nyquist) {
            return Err(format!(
                "need 0 <= fmin < fmax <= {nyquist} Hz, got {} and {}",
                self.fmin, self.fmax
            ));
        }
        if !(self.log_floor > 0.0 && self.log_floor.is_finite()) {
            return Err("log_floor must be positive".into());
        }
        if !self.pre_emphasis.is_finite() {
            return Err("pre_emphasis must be finite".into());
        }
        if self.feature_mean.len() != self.n_mels || self.feature_std.len() != self.n_mels {
            return Err(format!(
                "feature_mean and feature_std need {} values each, got {} and {}",
                self.n_mels,
                self.feature_mean.len(),
                self.feature_std.len()
            ));
        }
        if self.feature_mean.iter().any(|v| !v.is_finite())
            || self
                .feature_std
                .iter()
                .any(|v| !(v.is_finite() && *v > 0.0))
        {
            return Err("feature_mean must be finite and feature_std positive".into());
        }
        Ok(())
    }
}

/// One triangular filter: weights for the bins `first .. first + weights.len()`.
struct Band {
    first: usize,
    weights: Vec<f64>,
}

/// HTK mel filters exactly as `common.mel_filterbank`.
fn mel_filterbank(cfg: &FrontEndConfig) -> Vec<Band> {
    let hz_to_mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
    let mel_to_hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
    let bins = cfg.n_fft / 2 + 1;
    let (lo, hi) = (hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax));
    let points = cfg.n_mels + 2;
    let hz: Vec<f64> = (0..points)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (points - 1) as f64))
        .collect();
    (0..cfg.n_mels)
        .map(|m| {
            let (l, c, h) = (hz[m], hz[m + 1], hz[m + 2]);
            let w: Vec<f64> = (0..bins)
                .map(|k| {
                    let f = k as f64 * cfg.sample_rate as f64 / cfg.n_fft as f64;
                    ((f - l) / (c - l)).min((h - f) / (h - c)).max(0.0)
                })
                .collect();
            let first = w.iter().position(|&v| v > 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&v| v > 0.0).map_or(first, |i| i + 1);
            Band {
                first,
                weights: w[first..last].to_vec(),
            }
        })
        .collect()
}

/// The streaming front end of one stream.
pub struct FrontEnd {
    cfg: FrontEndConfig,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    bands: Vec<Band>,
    /// Samples of the frame being filled (pre-emphasised).
    frame: Vec<f64>,
    fill: usize,
    prev_sample: f64,
    fft_in: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
    /// The last `stack` normalised frames, oldest first in logical order (a ring).
    history: Vec<f32>,
    /// Frame energies (mean square of the frame's samples) of the same frames.
    energy: Vec<f64>,
    frames: u64,
    step: Vec<f32>,
}

impl FrontEnd {
    /// Plans the FFT and sizes every buffer.
    pub fn new(cfg: FrontEndConfig) -> Result<FrontEnd, String> {
        cfg.validate()?;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(cfg.n_fft);
        let win = cfg.win_length;
        let window = (0..win)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / win as f64).cos())
            .collect();
        let bands = mel_filterbank(&cfg);
        Ok(FrontEnd {
            fft_in: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; cfg.n_fft / 2 + 1],
            frame: vec![0.0; win],
            fill: 0,
            prev_sample: 0.0,
            history: vec![0.0; cfg.stack * cfg.n_mels],
            energy: vec![0.0; cfg.stack],
            frames: 0,
            step: vec![0.0; cfg.stack * cfg.n_mels],
            window,
            bands,
            fft,
            cfg,
        })
    }

    /// The parameters.
    pub fn config(&self) -> &FrontEndConfig {
        &self.cfg
    }

    /// Frames computed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Back to the start of a stream.
    pub fn reset(&mut self) {
        self.fill = 0;
        self.prev_sample = 0.0;
        self.frames = 0;
    }

    /// Feeds samples (floats in [-1, 1) at the configured rate). Calls `emit` with every
    /// completed step (`stack · n_mels` normalised values) and the step's level: the mean square
    /// of its frames' samples in dB full scale (−100 for silence).
    pub fn push(&mut self, mut samples: &[f32], emit: &mut dyn FnMut(&[f32], f32)) {
        let a = self.cfg.pre_emphasis as f64;
        while !samples.is_empty() {
            let take = (self.frame.len() - self.fill).min(samples.len());
            for (dst, &x) in self.frame[self.fill..self.fill + take]
                .iter_mut()
                .zip(&samples[..take])
            {
                let x = x as f64;
                // The reference keeps the stream's first sample as it is.
                let prev = if self.frames == 0 && self.fill == 0 && a != 0.0 {
                    0.0
                } else {
                    self.prev_sample
                };
                *dst = x - a * prev;
                self.prev_sample = x;
                self.fill += 1;
            }
            samples = &samples[take..];
            if self.fill == self.frame.len() {
                self.frame_done(emit);
                let hop = self.cfg.hop_length.min(self.frame.len());
                self.frame.copy_within(hop.., 0);
                self.fill -= hop;
            }
        }
    }

    fn frame_done(&mut self, emit: &mut dyn FnMut(&[f32], f32)) {
        let cfg = &self.cfg;
        let win = cfg.win_length;
        let mut sum_sq = 0.0;
        for (i, (&x, &w)) in self.frame.iter().zip(&self.window).enumerate() {
            self.fft_in[i] = x * w;
            sum_sq += x * x;
        }
        self.fft_in[win..].fill(0.0);
        // Lengths come from the same plan, so the FFT cannot fail.
        let _ =
            self.fft
                .process_with_scratch(&mut self.fft_in, &mut self.spectrum, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.re * c.re + c.im * c.im;
        }
        let slot = (self.frames % cfg.stack as u64) as usize;
        let n = cfg.n_mels;
        let row = &mut self.history[slot * n..(slot + 1) * n];
        for (m, band) in self.bands.iter().enumerate() {
            let mel: f64 = band
                .weights
                .iter()
                .zip(&self.power[band.first..])
                .map(|(w, p)| w * p)
                .sum();
            let log = mel.max(cfg.log_floor).ln() as f32;
            row[m] = (log - cfg.feature_mean[m]) / cfg.feature_std[m];
        }
        self.energy[slot] = sum_sq / win as f64;
        self.frames += 1;
        let f = self.frames as usize;
        if f >= cfg.stack && (f - cfg.stack).is_multiple_of(cfg.stride) {
            let mut power = 0.0;
            for j in 0..cfg.stack {
                let src = (f - cfg.stack + j) % cfg.stack;
                self.step[j * n..(j + 1) * n]
                    .copy_from_slice(&self.history[src * n..(src + 1) * n]);
                power += self.energy[src];
            }
            let db = 10.0 * (power / cfg.stack as f64).max(1e-10).log10();
            emit(&self.step, db as f32);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The training front end with neutral normalisation.
    pub(crate) fn config() -> FrontEndConfig {
        FrontEndConfig {
            sample_rate: 16_000,
            pre_emphasis: 0.0,
            win_length: 400,
            hop_length: 160,
            n_fft: 512,
            n_mels: 80,
            fmin: 20.0,
            fmax: 7600.0,
            log_floor: 1e-10,
            feature_mean: vec![0.0; 80],
            feature_std: vec![1.0; 80],
            stack: 3,
            stride: 3,
        }
    }

    #[test]
    fn silence_hits_the_log_floor() {
        let mut fe = FrontEnd::new(config()).unwrap();
        let mut steps = Vec::new();
        fe.push(&[0.0; 800], &mut |s, db| steps.push((s.to_vec(), db)));
        assert_eq!(fe.frames(), 3);
        assert_eq!(steps.len(), 1);
        let floor = (1e-10f64).ln() as f32;
        assert!(steps[0].0.iter().all(|&v| (v - floor).abs() < 1e-5));
        assert_eq!(steps[0].1, -100.0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut c = config();
        c.n_fft = 256;
        assert!(FrontEnd::new(c).is_err());
        let mut c = config();
        c.feature_std[3] = 0.0;
        assert!(FrontEnd::new(c).is_err());
        let mut c = config();
        c.fmax = 9000.0;
        assert!(FrontEnd::new(c).is_err());
    }
}

//! Resampling in blocks with preallocated buffers.
//!
//! [`BlockResampler`] accepts input in chunks of any size and emits output
//! through a callback; its output does not depend on how the input was chunked.
//! It wraps rubato's synchronous FFT resampler and calls only
//! `process_into_buffer` after construction, so it never allocates while
//! streaming. The resampler's startup delay is trimmed, so output sample `k`
//! lines up with input time `k / to_rate`.
//!
//! [`BlockPipeline`] adds fixed-size output blocks on top, shared by the live
//! capture worker and by the WAV reader.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::AudioError;

/// Input frames per resampler call (rounded by rubato to suit the rate pair).
const CHUNK_HINT: usize = 1024;

/// A mono resampler that takes input in chunks of any size.
pub struct BlockResampler {
    from: u32,
    to: u32,
    inner: Option<Fft<f32>>,
    in_buf: Vec<f32>,
    in_fill: usize,
    out_buf: Vec<f32>,
    to_trim: usize,
    consumed: u64,
    produced: u64,
}

impl BlockResampler {
    /// A resampler from `from` Hz to `to` Hz. Equal rates pass samples through untouched.
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        if from == 0 || to == 0 {
            return Err(AudioError::InvalidParameter(format!(
                "sample rates must be positive (got {from} Hz → {to} Hz)"
            )));
        }
        let inner = if from == to {
            None
        } else {
            let fft = Fft::<f32>::new(from as usize, to as usize, CHUNK_HINT, 1, FixedSync::Input)
                .map_err(|e| AudioError::Resampler {
                    from,
                    to,
                    detail: e.to_string(),
                })?;
            Some(fft)
        };
        let (chunk_in, chunk_out, delay) = match &inner {
            Some(r) => (
                r.input_frames_max(),
                r.output_frames_max(),
                r.output_delay(),
            ),
            None => (0, 0, 0),
        };
        Ok(Self {
            from,
            to,
            inner,
            in_buf: vec![0.0; chunk_in],
            in_fill: 0,
            out_buf: vec![0.0; chunk_out],
            to_trim: delay,
            consumed: 0,
            produced: 0,
        })
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// The most output frames a single input frame can cause to be emitted at once.
    pub fn max_output_burst(&self) -> usize {
        self.out_buf.len()
    }

    /// Output length for `input` frames, as [`finish`](Self::finish) will produce it.
    pub fn output_len(&self, input: u64) -> u64 {
        (input * self.to as u64).div_ceil(self.from as u64)
    }

    /// Feeds `input`; calls `emit` with each run of output ready so far.
    pub fn process(&mut self, mut input: &[f32], emit: &mut dyn FnMut(&[f32])) {
        self.consumed += input.len() as u64;
        if self.inner.is_none() {
            if !input.is_empty() {
                self.produced += input.len() as u64;
                emit(input);
            }
            return;
        }
        while !input.is_empty() {
            let room = self.in_buf.len() - self.in_fill;
            let take = room.min(input.len());
            // The FFT resampler fails (rubato panics) when its FFT meets NaN or infinity:
            // NaN is resampled as silence and samples are limited to ±16 (24 dB over full
            // scale), far above real audio and far below where the FFT could overflow.
            for (d, s) in self.in_buf[self.in_fill..self.in_fill + take]
                .iter_mut()
                .zip(&input[..take])
            {
                *d = if s.is_nan() {
                    0.0
                } else {
                    s.clamp(-16.0, 16.0)
                };
            }
            self.in_fill += take;
            input = &input[take..];
            if self.in_fill == self.in_buf.len() {
                self.run_chunk(None, u64::MAX, emit);
            }
        }
    }

    /// Flushes the remaining input and the resampler's tail; the total output is then
    /// exactly [`output_len`](Self::output_len) of all input. The resampler is ready for a
    /// new stream afterwards.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[f32])) {
        if self.inner.is_some() {
            let total = self.output_len(self.consumed);
            if self.in_fill > 0 {
                let partial = self.in_fill;
                self.run_chunk(Some(partial), total, emit);
            }
            while self.produced < total {
                self.run_chunk(Some(0), total, emit);
            }
        }
        self.reset();
    }

    /// Forgets all input and starts a new stream.
    pub fn reset(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.reset();
            self.to_trim = inner.output_delay();
        }
        self.in_fill = 0;
        self.consumed = 0;
        self.produced = 0;
    }

    fn run_chunk(&mut self, partial: Option<usize>, limit: u64, emit: &mut dyn FnMut(&[f32])) {
        let Some(inner) = &mut self.inner else {
            return;
        };
        let frames_in = self.in_buf.len();
        let frames_out = self.out_buf.len();
        // Both wrappers only borrow the buffers; sizes match by construction.
        let (Ok(input), Ok(mut output)) = (
            InterleavedSlice::new(&self.in_buf[..], 1, frames_in),
            InterleavedSlice::new_mut(&mut self.out_buf[..], 1, frames_out),
        ) else {
            return;
        };
        let indexing = partial.map(|n| Indexing {
            partial_len: Some(n),
            ..Indexing::default()
        });
        let Ok((_, written)) = inner.process_into_buffer(&input, &mut output, indexing.as_ref())
        else {
            return;
        };
        self.in_fill = 0;
        let mut out = &self.out_buf[..written];
        let trim = self.to_trim.min(out.len());
        self.to_trim -= trim;
        out = &out[trim..];
        let allowed = limit.saturating_sub(self.produced).min(out.len() as u64) as usize;
        out = &out[..allowed];
        if !out.is_empty() {
            self.produced += out.len() as u64;
            emit(out);
        }
    }
}

/// Resamples a whole signal at once (allocates; for tests and references).
pub fn resample_all(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    let mut resampler = BlockResampler::new(from, to)?;
    let mut out = Vec::with_capacity(resampler.output_len(input.len() as u64) as usize);
    resampler.process(input, &mut |s| out.extend_from_slice(s));
    resampler.finish(&mut |s| out.extend_from_slice(s));
    Ok(out)
}

/// Resampling followed by cutting the output into blocks of a fixed size.
pub struct BlockPipeline {
    resampler: BlockResampler,
    block: Vec<f32>,
    fill: usize,
}

impl BlockPipeline {
    /// A pipeline from `from` Hz to `to` Hz that emits blocks of `block_len` samples.
    pub fn new(from: u32, to: u32, block_len: usize) -> Result<Self, AudioError> {
        if block_len == 0 {
            return Err(AudioError::InvalidParameter(
                "block length must be positive".into(),
            ));
        }
        Ok(Self {
            resampler: BlockResampler::new(from, to)?,
            block: vec![0.0; block_len],
            fill: 0,
        })
    }

    /// Output rate in Hz.
    pub fn rate(&self) -> u32 {
        self.resampler.to_rate()
    }

    /// Block length in samples.
    pub fn block_len(&self) -> usize {
        self.block.len()
    }

    /// Feeds input; calls `emit` with every full block.
    pub fn push(&mut self, input: &[f32], emit: &mut dyn FnMut(&[f32])) {
        let Self {
            resampler,
            block,
            fill,
        } = self;
        resampler.process(input, &mut |out| fill_blocks(block, fill, out, emit));
    }

    /// Flushes everything; the last block may be shorter.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[f32])) {
        let Self {
            resampler,
            block,
            fill,
        } = self;
        resampler.finish(&mut |out| fill_blocks(block, fill, out, emit));
        if *fill > 0 {
            emit(&block[..*fill]);
            *fill = 0;
        }
    }
}

/// A [`BlockPipeline`] fed by a file reader: queues its blocks and hands them out one at a
/// time. The reader is called while [`wants_more`](Self::wants_more) says so, and gives each
/// read to [`feed`](Self::feed); [`take`](Self::take) then yields the next block.
pub struct BlockQueue {
    pipeline: BlockPipeline,
    out: Vec<f32>,
    out_pos: usize,
    finished: bool,
}

impl BlockQueue {
    /// Queues the blocks of `pipeline`.
    pub fn new(pipeline: BlockPipeline) -> Self {
        Self {
            pipeline,
            out: Vec::new(),
            out_pos: 0,
            finished: false,
        }
    }

    /// Output rate.
    pub fn rate(&self) -> u32 {
        self.pipeline.rate()
    }

    /// Whether a whole block is not queued yet and the input has not ended.
    pub fn wants_more(&mut self) -> bool {
        if self.out.len() - self.out_pos >= self.pipeline.block_len() || self.finished {
            return false;
        }
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        true
    }

    /// Resamples `mono` into the queue; `more == false` marks the end of the input.
    pub fn feed(&mut self, mono: &[f32], more: bool) {
        let out = &mut self.out;
        if more {
            self.pipeline.push(mono, &mut |b| out.extend_from_slice(b));
        } else {
            self.pipeline.finish(&mut |b| out.extend_from_slice(b));
            self.finished = true;
        }
    }

    /// The next block (shorter at the end), or `None` when everything was handed out.
    pub fn take(&mut self) -> Option<&[f32]> {
        let n = (self.out.len() - self.out_pos).min(self.pipeline.block_len());
        if n == 0 {
            return None;
        }
        let start = self.out_pos;
        self.out_pos += n;
        Some(&self.out[start..start + n])
    }
}

fn fill_blocks(block: &mut [f32], fill: &mut usize, mut out: &[f32], emit: &mut dyn FnMut(&[f32])) {
    while !out.is_empty() {
        let take = (block.len() - *fill).min(out.len());
        block[*fill..*fill + take].copy_from_slice(&out[..take]);
        *fill += take;
        out = &out[take..];
        if *fill == block.len() {
            emit(block);
            *fill = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn same_rate_passes_through() {
        let x = sine(440.0, 16_000, 1000);
        assert_eq!(resample_all(&x, 16_000, 16_000).unwrap(), x);
    }

    #[test]
    fn output_length_follows_ratio() {
        for (from, to) in [
            (48_000, 16_000),
            (44_100, 16_000),
            (16_000, 48_000),
            (22_050, 44_100),
        ] {
            let x = sine(300.0, from, 12_345);
            let y = resample_all(&x, from, to).unwrap();
            assert_eq!(
                y.len() as u64,
                (12_345u64 * to as u64).div_ceil(from as u64)
            );
        }
    }

    #[test]
    fn sine_keeps_frequency_and_phase() {
        // A 1 kHz tone resampled 48 kHz → 16 kHz must match the tone generated at 16 kHz:
        // same amplitude and, because the startup delay is trimmed, the same phase.
        let x = sine(1000.0, 48_000, 48_000);
        let y = resample_all(&x, 48_000, 16_000).unwrap();
        let want = sine(1000.0, 16_000, 16_000);
        let mid = &y[2000..14_000];
        let err = mid
            .iter()
            .zip(&want[2000..14_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(matches!(
            BlockResampler::new(0, 16_000),
            Err(AudioError::InvalidParameter(_))
        ));
    }

    #[test]
    fn pipeline_emits_fixed_blocks() {
        let mut p = BlockPipeline::new(48_000, 16_000, 160).unwrap();
        let x = sine(500.0, 48_000, 10_000);
        let mut lens = Vec::new();
        p.push(&x, &mut |b| lens.push(b.len()));
        p.finish(&mut |b| lens.push(b.len()));
        let total: usize = lens.iter().sum();
        assert_eq!(total as u64, 10_000u64.div_ceil(3));
        assert!(lens[..lens.len() - 1].iter().all(|&l| l == 160));
    }
}

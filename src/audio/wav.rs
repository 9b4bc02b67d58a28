//! WAV files: reading every common encoding into the block stream, and writing.
//!
//! [`WavSource`] reads 8/16/24/32-bit integer and 32-bit float WAV files with any
//! channel count and rate, downmixes to mono and resamples through the same
//! [`BlockPipeline`] as live capture. [`WavSink`] writes mono WAV files.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::resample::{BlockPipeline, BlockQueue};
use super::{AudioError, BlockSource};

/// Frames read from the file per refill.
const READ_FRAMES: usize = 4096;

/// What a WAV file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WavInfo {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    pub float: bool,
    /// Frames the header announces.
    pub frames: u64,
}

impl WavInfo {
    /// Length in seconds, from the header.
    pub fn seconds(&self) -> f64 {
        self.frames as f64 / self.sample_rate as f64
    }
}

/// A WAV file read as mono `f32` blocks at a chosen rate.
pub struct WavSource {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    info: WavInfo,
    queue: BlockQueue,
    mono: Vec<f32>,
    samples_read: u64,
}

impl WavSource {
    /// Opens `path`; blocks will be `block_seconds` long at `rate` Hz (the file's rate
    /// when `None`).
    pub fn open(path: &Path, rate: Option<u32>, block_seconds: f32) -> Result<Self, AudioError> {
        let reader = hound::WavReader::open(path).map_err(|e| map_hound(e, path))?;
        let spec = reader.spec();
        let info = WavInfo {
            sample_rate: spec.sample_rate,
            channels: spec.channels,
            bits_per_sample: spec.bits_per_sample,
            float: spec.sample_format == hound::SampleFormat::Float,
            frames: reader.duration() as u64,
        };
        let unsupported = |detail: String| AudioError::UnsupportedWav {
            path: path.to_owned(),
            detail,
        };
        if info.channels == 0 || info.sample_rate == 0 {
            return Err(AudioError::NotWav {
                path: path.to_owned(),
                detail: format!(
                    "header has {} channels at {} Hz",
                    info.channels, info.sample_rate
                ),
            });
        }
        match (info.float, info.bits_per_sample) {
            (false, 8 | 16 | 24 | 32) | (true, 32) => {}
            (float, bits) => {
                return Err(unsupported(format!(
                    "{bits}-bit {}",
                    if float { "float" } else { "integer" }
                )));
            }
        }
        if block_seconds.is_nan() || block_seconds <= 0.0 {
            return Err(AudioError::InvalidParameter(
                "block length must be positive".into(),
            ));
        }
        let out_rate = rate.unwrap_or(info.sample_rate);
        let block_len = ((out_rate as f32 * block_seconds).round() as usize).max(1);
        let pipeline = BlockPipeline::new(info.sample_rate, out_rate, block_len)?;
        Ok(Self {
            path: path.to_owned(),
            reader,
            info,
            queue: BlockQueue::new(pipeline),
            mono: Vec::with_capacity(READ_FRAMES),
            samples_read: 0,
        })
    }

    /// What the file holds.
    pub fn info(&self) -> WavInfo {
        self.info
    }

    /// Fraction of the file read so far, 0 to 1.
    pub fn progress(&self) -> f64 {
        let total = self.info.frames * self.info.channels as u64;
        if total == 0 {
            1.0
        } else {
            self.samples_read as f64 / total as f64
        }
    }

    /// Reads up to [`READ_FRAMES`] frames into `self.mono`; an empty result is the end.
    fn read_frames(&mut self) -> Result<(), AudioError> {
        self.mono.clear();
        let channels = self.info.channels as usize;
        let wanted = READ_FRAMES * channels;
        let expected = self.info.frames * channels as u64;
        let scale = 1.0 / channels as f32;
        let mut acc = 0.0f32;
        let mut in_frame = 0;
        let mut read = 0;
        let mut push = |v: f32, mono: &mut Vec<f32>| {
            acc += v;
            in_frame += 1;
            if in_frame == channels {
                mono.push(acc * scale);
                acc = 0.0;
                in_frame = 0;
            }
        };
        let result: Result<(), hound::Error> = if self.info.float {
            self.reader.samples::<f32>().take(wanted).try_for_each(|s| {
                push(s?, &mut self.mono);
                read += 1;
                Ok(())
            })
        } else {
            let int_scale = 1.0 / (1u64 << (self.info.bits_per_sample - 1)) as f32;
            self.reader.samples::<i32>().take(wanted).try_for_each(|s| {
                push(s? as f32 * int_scale, &mut self.mono);
                read += 1;
                Ok(())
            })
        };
        self.samples_read += read;
        match result {
            Ok(()) => Ok(()),
            Err(hound::Error::IoError(e)) if is_short_read(&e) => Err(self.truncated(expected)),
            Err(hound::Error::UnfinishedSample) => Err(self.truncated(expected)),
            Err(e) => Err(map_hound(e, &self.path)),
        }
    }

    fn truncated(&self, expected: u64) -> AudioError {
        AudioError::TruncatedWav {
            path: self.path.clone(),
            expected,
            got: self.samples_read,
        }
    }
}

impl BlockSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.queue.rate()
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        while self.queue.wants_more() {
            self.read_frames()?;
            self.queue.feed(&self.mono, !self.mono.is_empty());
        }
        Ok(self.queue.take())
    }
}

/// hound reports a file that ends early either as `UnexpectedEof` or as an `Other`
/// error with this message.
fn is_short_read(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
        || (e.kind() == std::io::ErrorKind::Other
            && e.to_string().contains("Failed to read enough bytes"))
}

fn map_hound(e: hound::Error, path: &Path) -> AudioError {
    match e {
        hound::Error::IoError(source) if is_short_read(&source) => AudioError::NotWav {
            path: path.to_owned(),
            detail: "the file ends inside its header".into(),
        },
        hound::Error::IoError(source) => AudioError::Io {
            path: path.to_owned(),
            source,
        },
        hound::Error::FormatError(detail) => AudioError::NotWav {
            path: path.to_owned(),
            detail: detail.to_owned(),
        },
        hound::Error::Unsupported => AudioError::UnsupportedWav {
            path: path.to_owned(),
            detail: "compressed or unknown sample format".into(),
        },
        other => AudioError::NotWav {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Sample encodings Reprise writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WavFormat {
    #[default]
    Int16,
    Int24,
    Float32,
}

impl std::str::FromStr for WavFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "16" | "i16" | "int16" => Ok(Self::Int16),
            "24" | "i24" | "int24" => Ok(Self::Int24),
            "f32" | "float" | "float32" => Ok(Self::Float32),
            other => Err(format!(
                "unknown WAV format {other:?} (expected 16, 24 or f32)"
            )),
        }
    }
}

/// A mono WAV file being written.
pub struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<File>>,
    format: WavFormat,
    frames: u64,
}

impl WavSink {
    /// Creates (or replaces) `path`.
    pub fn create(path: &Path, rate: u32, format: WavFormat) -> Result<Self, AudioError> {
        Self::create_with_channels(path, rate, 1, format)
    }

    /// Creates a file with `channels` interleaved channels.
    pub fn create_with_channels(
        path: &Path,
        rate: u32,
        channels: u16,
        format: WavFormat,
    ) -> Result<Self, AudioError> {
        let (bits, sample_format) = match format {
            WavFormat::Int16 => (16, hound::SampleFormat::Int),
            WavFormat::Int24 => (24, hound::SampleFormat::Int),
            WavFormat::Float32 => (32, hound::SampleFormat::Float),
        };
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| map_hound(e, path))?;
        Ok(Self {
            path: path.to_owned(),
            writer,
            format,
            frames: 0,
        })
    }

    /// Appends samples in [-1, 1] (clipped for integer formats).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let result = match self.format {
            WavFormat::Float32 => samples
                .iter()
                .try_for_each(|&s| self.writer.write_sample(s)),
            WavFormat::Int16 => samples
                .iter()
                .try_for_each(|&s| self.writer.write_sample(quantize(s, 16) as i16)),
            WavFormat::Int24 => samples
                .iter()
                .try_for_each(|&s| self.writer.write_sample(quantize(s, 24))),
        };
        self.frames += samples.len() as u64;
        result.map_err(|e| map_hound(e, &self.path))
    }

    /// Samples written so far (all channels).
    pub fn samples_written(&self) -> u64 {
        self.frames
    }

    /// Writes the final header.
    pub fn finalize(self) -> Result<(), AudioError> {
        let path = self.path;
        self.writer.finalize().map_err(|e| map_hound(e, &path))
    }
}

/// Converts a sample in [-1, 1] to a signed integer of `bits` bits, clipping.
pub fn quantize(sample: f32, bits: u32) -> i32 {
    let full = (1i64 << (bits - 1)) as f32;
    (sample * full).round().clamp(-full, full - 1.0) as i32
}

/// Encodes interleaved samples as a WAV file in memory.
pub fn encode_wav(
    samples: &[f32],
    rate: u32,
    channels: u16,
    format: WavFormat,
) -> Result<Vec<u8>, AudioError> {
    let (bits_per_sample, sample_format) = match format {
        WavFormat::Int16 => (16, hound::SampleFormat::Int),
        WavFormat::Int24 => (24, hound::SampleFormat::Int),
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample,
        sample_format,
    };
    let here = Path::new("(memory)");
    let mut out = std::io::Cursor::new(Vec::with_capacity(samples.len() * 4 + 64));
    let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| map_hound(e, here))?;
    let result = match format {
        WavFormat::Float32 => samples.iter().try_for_each(|&s| w.write_sample(s)),
        WavFormat::Int16 => samples
            .iter()
            .try_for_each(|&s| w.write_sample(quantize(s, 16) as i16)),
        WavFormat::Int24 => samples
            .iter()
            .try_for_each(|&s| w.write_sample(quantize(s, 24))),
    };
    result.map_err(|e| map_hound(e, here))?;
    w.finalize().map_err(|e| map_hound(e, here))?;
    Ok(out.into_inner())
}

/// Writes a mono file in one go.
pub fn write_wav(
    path: &Path,
    samples: &[f32],
    rate: u32,
    format: WavFormat,
) -> Result<(), AudioError> {
    let mut sink = WavSink::create(path, rate, format)?;
    sink.write(samples)?;
    sink.finalize()
}

/// Reads a whole file as mono at its own rate (or `rate`).
pub fn read_wav(path: &Path, rate: Option<u32>) -> Result<(Vec<f32>, u32), AudioError> {
    let mut source = WavSource::open(path, rate, 0.1)?;
    let samples = super::read_all(&mut source)?;
    Ok((samples, source.sample_rate()))
}

//! The audio edge: devices, capture, playback, resampling and audio files.
//!
//! Live capture and WAV files both end as a [`BlockSource`]: mono `f32` blocks at
//! the consumer's rate, so the live and offline paths share everything after it.

/// Calls `build::<T>(args…)` with `T` the Rust type of a cpal sample format.
macro_rules! dispatch_sample_format {
    ($format:expr, $build:ident ( $($arg:expr),* )) => {{
        use cpal::SampleFormat as F;
        match $format {
            F::I8 => $build::<i8>($($arg),*),
            F::I16 => $build::<i16>($($arg),*),
            F::I24 => $build::<cpal::I24>($($arg),*),
            F::I32 => $build::<i32>($($arg),*),
            F::I64 => $build::<i64>($($arg),*),
            F::U8 => $build::<u8>($($arg),*),
            F::U16 => $build::<u16>($($arg),*),
            F::U24 => $build::<cpal::U24>($($arg),*),
            F::U32 => $build::<u32>($($arg),*),
            F::U64 => $build::<u64>($($arg),*),
            F::F32 => $build::<f32>($($arg),*),
            F::F64 => $build::<f64>($($arg),*),
            other => Err(cpal::Error::with_message(
                cpal::ErrorKind::UnsupportedConfig,
                format!("sample format {other} is not supported by Reprise"),
            )),
        }
    }};
}

pub mod capture;
pub mod decode;
pub mod device;
mod error;
pub mod playback;
pub mod resample;
pub mod wav;

pub use capture::{Capture, CaptureConfig};
pub use decode::{DecodedSource, FileSource, open_file};
pub use device::{DeviceList, HostChoice};
pub use error::AudioError;
pub use playback::{Playback, PlaybackConfig};
pub use resample::{BlockPipeline, BlockResampler};
pub use wav::{WavFormat, WavSource};

/// A stream of mono `f32` blocks at a fixed sample rate.
pub trait BlockSource {
    /// The rate of the samples this source yields, in Hz.
    fn sample_rate(&self) -> u32;

    /// The next block, or `None` at the end of the stream.
    ///
    /// Blocks have the source's block size except possibly the last one.
    fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError>;
}

/// Reads a whole source into memory (for tests and short files).
pub fn read_all(source: &mut dyn BlockSource) -> Result<Vec<f32>, AudioError> {
    let mut all = Vec::new();
    while let Some(block) = source.next_block()? {
        all.extend_from_slice(block);
    }
    Ok(all)
}

//! Compressed audio files (FLAC, MP3, Ogg Vorbis) through Symphonia, as a [`BlockSource`].
//!
//! Symphonia is pure Rust (no system codec libraries to install) and decodes packet by packet,
//! so a long file streams through the same [`BlockPipeline`] as live capture instead of being
//! read into memory. WAV files keep going through [`WavSource`] (hound), which reads every WAV
//! encoding Reprise supports; [`open_file`] picks the reader.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::resample::{BlockPipeline, BlockQueue};
use super::wav::WavSource;
use super::{AudioError, BlockSource};

/// A compressed audio file read as mono `f32` blocks at a chosen rate.
pub struct DecodedSource {
    path: PathBuf,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    channels: usize,
    frames: Option<u64>,
    frames_read: u64,
    queue: BlockQueue,
    interleaved: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
}

impl DecodedSource {
    /// Opens `path`; blocks will be `block_seconds` long at `rate` Hz (the file's rate when
    /// `None`).
    pub fn open(path: &Path, rate: Option<u32>, block_seconds: f32) -> Result<Self, AudioError> {
        let bad = |detail: String| AudioError::Decode {
            path: path.to_owned(),
            detail,
        };
        let file = File::open(path).map_err(|source| AudioError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .map_err(|e| bad(e.to_string()))?;
        let reader = probed.format;
        let track = reader
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| bad("no audio track".into()))?;
        let params = &track.codec_params;
        let file_rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| bad("the sample rate is unknown".into()))?;
        let channels = params.channels.map_or(1, |c| c.count()).max(1);
        let frames = params.n_frames;
        let decoder = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| bad(e.to_string()))?;
        if block_seconds.is_nan() || block_seconds <= 0.0 {
            return Err(AudioError::InvalidParameter(
                "block length must be positive".into(),
            ));
        }
        let out_rate = rate.unwrap_or(file_rate);
        let block_len = ((out_rate as f32 * block_seconds).round() as usize).max(1);
        Ok(DecodedSource {
            path: path.to_owned(),
            track: track.id,
            channels,
            frames,
            frames_read: 0,
            queue: BlockQueue::new(BlockPipeline::new(file_rate, out_rate, block_len)?),
            interleaved: None,
            mono: Vec::new(),
            reader,
            decoder,
        })
    }

    /// Fraction of the file read so far, 0 to 1 (0 when the length is unknown).
    pub fn progress(&self) -> f64 {
        match self.frames {
            Some(n) if n > 0 => (self.frames_read as f64 / n as f64).min(1.0),
            _ => 0.0,
        }
    }

    /// Decodes the next packet into `self.mono`; `false` at the end of the file.
    fn decode_packet(&mut self) -> Result<bool, AudioError> {
        loop {
            let packet = match self.reader.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(false);
                }
                Err(e) => {
                    return Err(AudioError::Decode {
                        path: self.path.clone(),
                        detail: e.to_string(),
                    });
                }
            };
            if packet.track_id() != self.track {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                // A damaged packet is skipped, as players do.
                Err(SymError::DecodeError(_)) => continue,
                Err(e) => {
                    return Err(AudioError::Decode {
                        path: self.path.clone(),
                        detail: e.to_string(),
                    });
                }
            };
            let spec = *decoded.spec();
            let capacity = decoded.capacity() as u64;
            let buf = match &mut self.interleaved {
                Some(b) if b.capacity() >= decoded.capacity() * spec.channels.count() => b,
                slot => slot.insert(SampleBuffer::new(capacity, spec)),
            };
            buf.copy_interleaved_ref(decoded);
            let ch = spec.channels.count().max(1);
            self.channels = ch;
            self.mono.clear();
            let scale = 1.0 / ch as f32;
            self.mono.extend(
                buf.samples()
                    .chunks_exact(ch)
                    .map(|f| f.iter().sum::<f32>() * scale),
            );
            self.frames_read += self.mono.len() as u64;
            return Ok(true);
        }
    }
}

impl BlockSource for DecodedSource {
    fn sample_rate(&self) -> u32 {
        self.queue.rate()
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        while self.queue.wants_more() {
            let more = self.decode_packet()?;
            self.queue.feed(&self.mono, more);
        }
        Ok(self.queue.take())
    }
}

/// An audio file of any supported format as a block source with its progress.
pub enum FileSource {
    /// A WAV file (hound).
    Wav(WavSource),
    /// FLAC, MP3 or Ogg Vorbis (Symphonia).
    Decoded(DecodedSource),
}

impl FileSource {
    /// Fraction of the file read so far.
    pub fn progress(&self) -> f64 {
        match self {
            FileSource::Wav(s) => s.progress(),
            FileSource::Decoded(s) => s.progress(),
        }
    }
}

impl BlockSource for FileSource {
    fn sample_rate(&self) -> u32 {
        match self {
            FileSource::Wav(s) => s.sample_rate(),
            FileSource::Decoded(s) => s.sample_rate(),
        }
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        match self {
            FileSource::Wav(s) => s.next_block(),
            FileSource::Decoded(s) => s.next_block(),
        }
    }
}

/// Opens a WAV (by its `RIFF`/`RF64` header) or any format Symphonia reads.
pub fn open_file(
    path: &Path,
    rate: Option<u32>,
    block_seconds: f32,
) -> Result<FileSource, AudioError> {
    let mut magic = [0u8; 4];
    let is_wav = File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map(|()| &magic == b"RIFF" || &magic == b"RF64" || &magic == b"RIFX")
        .unwrap_or(false);
    if is_wav {
        Ok(FileSource::Wav(WavSource::open(path, rate, block_seconds)?))
    } else {
        Ok(FileSource::Decoded(DecodedSource::open(
            path,
            rate,
            block_seconds,
        )?))
    }
}

//! Live audio playback: a ring of mono `f32` samples → a cpal output stream.
//!
//! The output callback ([`PlaybackSource::fill_interleaved`]) pops samples from a
//! wait-free SPSC ring, copies each to every channel and fills with silence when
//! the ring runs dry, counting those frames as underruns while playing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};

use super::AudioError;
use super::capture::{CaptureStats, StreamFailure};
use super::device::{self, ConfigRequest, Direction, HostChoice};

/// How to open a playback stream.
#[derive(Clone, Debug)]
pub struct PlaybackConfig {
    pub host: HostChoice,
    /// Device name (exact, or a unique part of it); `None` for the default output.
    pub device_name: Option<String>,
    /// Device configuration (rate, channels, sample format); `None` fields keep the
    /// device's default.
    pub device: ConfigRequest,
    /// Ring capacity in seconds.
    pub ring_seconds: f32,
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        Self {
            host: HostChoice::Default,
            device_name: None,
            device: ConfigRequest::default(),
            ring_seconds: 1.0,
        }
    }
}

/// Counters of a playback stream.
#[derive(Debug, Default)]
pub struct PlaybackStats {
    /// Frames taken from the ring and played.
    pub frames: AtomicU64,
    /// Frames filled with silence because the ring was empty while playing.
    pub underrun_frames: AtomicU64,
    /// Callback invocations.
    pub callbacks: AtomicU64,
    /// Set once the first sample has been written; underruns count from then on.
    started: AtomicBool,
    /// Set when the writer has said it is done; the silence after it is not an underrun.
    finished: AtomicBool,
    /// Stream errors, shared with the capture side's classification.
    errors: CaptureStats,
}

impl PlaybackStats {
    /// The first fatal error the stream reported, if any.
    pub fn failure(&self) -> Option<StreamFailure> {
        self.errors.failure()
    }
}

/// The body of the output callback.
pub struct PlaybackSource {
    consumer: rtrb::Consumer<f32>,
    channels: usize,
    stats: Arc<PlaybackStats>,
}

impl PlaybackSource {
    pub fn new(consumer: rtrb::Consumer<f32>, channels: usize, stats: Arc<PlaybackStats>) -> Self {
        Self {
            consumer,
            channels: channels.max(1),
            stats,
        }
    }

    /// Fills one callback's interleaved buffer. Wait-free, allocation-free.
    pub fn fill_interleaved<T>(&mut self, out: &mut [T])
    where
        T: Sample + FromSample<f32>,
    {
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
        let frames = out.len() / self.channels;
        let available = frames.min(self.consumer.slots());
        let mut played = 0;
        if let Ok(chunk) = self.consumer.read_chunk(available) {
            let (a, b) = chunk.as_slices();
            for (frame, &s) in out.chunks_exact_mut(self.channels).zip(a.iter().chain(b)) {
                frame.fill(T::from_sample(s));
                played += 1;
            }
            chunk.commit_all();
        }
        for frame in out.chunks_exact_mut(self.channels).skip(played) {
            frame.fill(T::EQUILIBRIUM);
        }
        self.stats
            .frames
            .fetch_add(played as u64, Ordering::Relaxed);
        let starved = (frames - played) as u64;
        if starved > 0
            && self.stats.started.load(Ordering::Relaxed)
            && !self.stats.finished.load(Ordering::Relaxed)
        {
            self.stats
                .underrun_frames
                .fetch_add(starved, Ordering::Relaxed);
        }
    }
}

/// A running output stream fed with mono samples.
pub struct Playback {
    stream: cpal::Stream,
    producer: rtrb::Producer<f32>,
    stats: Arc<PlaybackStats>,
    device_name: String,
    format: cpal::SampleFormat,
    rate: u32,
    channels: u16,
}

impl Playback {
    /// Opens the device and starts the stream (playing silence until fed).
    pub fn start(config: &PlaybackConfig) -> Result<Self, AudioError> {
        let host = device::open_host(config.host)?;
        let device = device::find_device(&host, Direction::Output, config.device_name.as_deref())?;
        let device_name = device::device_name(&device);
        let supported = device::choose_config(&device, Direction::Output, config.device)?;
        let rate = supported.sample_rate();
        let channels = supported.channels();
        let ring_len = ((rate as f32 * config.ring_seconds) as usize).max(1024);
        let stats = Arc::new(PlaybackStats::default());
        let attempt = |stream_config: &cpal::StreamConfig| {
            let (producer, consumer) = rtrb::RingBuffer::<f32>::new(ring_len);
            let source = PlaybackSource::new(consumer, channels as usize, stats.clone());
            build_output_stream(
                &device,
                stream_config,
                supported.sample_format(),
                source,
                stats.clone(),
            )
            .map(|stream| (stream, producer))
        };
        let (stream, producer) =
            device::build_with_fallback(&supported, attempt).map_err(|e| AudioError::Stream {
                device: device_name.clone(),
                detail: e.to_string(),
            })?;
        stream.play().map_err(|e| AudioError::Stream {
            device: device_name.clone(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            stream,
            producer,
            stats,
            device_name,
            format: supported.sample_format(),
            rate,
            channels,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Stream rate in Hz.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Stream channel count (each mono sample is copied to every channel).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Stream sample format.
    pub fn sample_format(&self) -> cpal::SampleFormat {
        self.format
    }

    /// Counters so far.
    pub fn stats(&self) -> &PlaybackStats {
        &self.stats
    }

    /// Queues as many samples as fit now; returns how many. Never blocks.
    pub fn write(&mut self, samples: &[f32]) -> usize {
        let n = samples.len().min(self.producer.slots());
        if n == 0 {
            return 0;
        }
        let Ok(mut chunk) = self.producer.write_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_mut_slices();
        let split = a.len();
        a.copy_from_slice(&samples[..split]);
        b.copy_from_slice(&samples[split..n]);
        chunk.commit_all();
        self.stats.started.store(true, Ordering::Relaxed);
        n
    }

    /// Queues all samples, waiting for room; fails if the device stops taking audio.
    pub fn write_all(&mut self, mut samples: &[f32], timeout: Duration) -> Result<(), AudioError> {
        let mut last_progress = Instant::now();
        while !samples.is_empty() {
            let n = self.write(samples);
            samples = &samples[n..];
            if n > 0 {
                last_progress = Instant::now();
                continue;
            }
            self.check()?;
            if last_progress.elapsed() > timeout {
                return Err(AudioError::Stalled {
                    device: self.device_name.clone(),
                    seconds: timeout.as_secs_f32(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Marks the end of the audio and waits until the ring has been played out.
    pub fn drain(&mut self, timeout: Duration) -> Result<(), AudioError> {
        self.stats.finished.store(true, Ordering::Relaxed);
        let start = Instant::now();
        while self.producer.slots() < self.producer.buffer().capacity() {
            self.check()?;
            if start.elapsed() > timeout {
                return Err(AudioError::Stalled {
                    device: self.device_name.clone(),
                    seconds: timeout.as_secs_f32(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), AudioError> {
        match self.stats.failure() {
            Some(f) => Err(AudioError::DeviceLost {
                device: self.device_name.clone(),
                detail: f.describe().to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Stops the stream.
    pub fn stop(self) {
        let _ = self.stream.pause();
    }
}

fn build_output_stream(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: cpal::SampleFormat,
    source: PlaybackSource,
    stats: Arc<PlaybackStats>,
) -> Result<cpal::Stream, cpal::Error> {
    fn build<T>(
        device: &cpal::Device,
        config: &cpal::StreamConfig,
        mut source: PlaybackSource,
        stats: Arc<PlaybackStats>,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample + FromSample<f32>,
    {
        device.build_output_stream::<T, _, _>(
            *config,
            move |out: &mut [T], _: &cpal::OutputCallbackInfo| source.fill_interleaved(out),
            move |err: cpal::Error| stats.errors.record_error(err.kind()),
            Some(Duration::from_secs(5)),
        )
    }
    dispatch_sample_format!(format, build(device, config, source, stats))
}

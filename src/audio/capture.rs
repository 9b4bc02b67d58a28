//! Live audio capture: a cpal input stream → wait-free SPSC ring → resampling worker.
//!
//! The input callback ([`CaptureSink::push_interleaved`]) converts samples to
//! `f32`, downmixes to mono, copies them into an `rtrb` ring and counts what did
//! not fit. It does nothing else: no allocation, lock, log or panic path. A worker
//! thread drains the ring, resamples to the consumer's rate with preallocated
//! buffers and hands fixed-size blocks on over a bounded channel, recycling the
//! block buffers it gets back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::device::{self, ConfigRequest, Direction, HostChoice};
use super::resample::BlockPipeline;
use super::{AudioError, BlockSource};
use crate::rt::ScopedFtz;

/// How to open a capture stream.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// Audio host.
    pub host: HostChoice,
    /// Device name (exact, or a unique part of it); `None` for the default input.
    pub device_name: Option<String>,
    /// Rate the consumer wants, in Hz; `None` keeps the device's rate.
    pub rate: Option<u32>,
    /// Device configuration to ask for. A rate given here must work (an error if it
    /// cannot); without one Reprise prefers `rate` when the device offers it, and falls
    /// back to the device's default.
    pub device: ConfigRequest,
    /// Output block length in seconds.
    pub block_seconds: f32,
    /// Ring capacity in seconds of device audio.
    pub ring_seconds: f32,
    /// How long without audio before the stream counts as stalled.
    pub stall_timeout: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            host: HostChoice::Default,
            device_name: None,
            rate: None,
            device: ConfigRequest::default(),
            block_seconds: 0.01,
            ring_seconds: 2.0,
            stall_timeout: Duration::from_secs(3),
        }
    }
}

/// Counters shared between the callback, the worker and the consumer.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Device frames that reached the ring.
    pub frames: AtomicU64,
    /// Device frames dropped because the ring was full.
    pub overrun_frames: AtomicU64,
    /// Callback invocations.
    pub callbacks: AtomicU64,
    /// Under- or overruns reported by the backend.
    pub xruns: AtomicU64,
    /// Blocks the worker dropped because the consumer fell behind.
    pub dropped_blocks: AtomicU64,
    /// First fatal stream error, as a [`StreamFailure`] code (0: none).
    failure: AtomicU8,
}

/// Why a stream stopped, as reported by the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFailure {
    DeviceNotAvailable,
    StreamInvalidated,
    Backend,
    Other,
}

impl StreamFailure {
    fn code(self) -> u8 {
        match self {
            Self::DeviceNotAvailable => 1,
            Self::StreamInvalidated => 2,
            Self::Backend => 3,
            Self::Other => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::DeviceNotAvailable),
            2 => Some(Self::StreamInvalidated),
            3 => Some(Self::Backend),
            4 => Some(Self::Other),
            _ => None,
        }
    }

    /// Words for an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Self::DeviceNotAvailable => "the device is no longer available",
            Self::StreamInvalidated => "the stream was invalidated by the system",
            Self::Backend => "the audio backend reported an error",
            Self::Other => "the stream reported an error",
        }
    }
}

impl CaptureStats {
    /// The first fatal error the stream reported, if any.
    pub fn failure(&self) -> Option<StreamFailure> {
        StreamFailure::from_code(self.failure.load(Ordering::Acquire))
    }

    /// Records a stream error from cpal's error callback (never blocks).
    pub fn record_error(&self, kind: cpal::ErrorKind) {
        let failure = match kind {
            cpal::ErrorKind::Xrun => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
                return;
            }
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => return,
            cpal::ErrorKind::DeviceNotAvailable => StreamFailure::DeviceNotAvailable,
            cpal::ErrorKind::StreamInvalidated => StreamFailure::StreamInvalidated,
            cpal::ErrorKind::BackendError => StreamFailure::Backend,
            _ => StreamFailure::Other,
        };
        let _ =
            self.failure
                .compare_exchange(0, failure.code(), Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The body of the input callback: converts, downmixes and pushes into the ring.
pub struct CaptureSink {
    producer: rtrb::Producer<f32>,
    channels: usize,
    stats: Arc<CaptureStats>,
}

impl CaptureSink {
    /// A sink for interleaved audio with `channels` channels.
    pub fn new(producer: rtrb::Producer<f32>, channels: usize, stats: Arc<CaptureStats>) -> Self {
        Self {
            producer,
            channels: channels.max(1),
            stats,
        }
    }

    /// Handles one callback's worth of interleaved samples. Wait-free, allocation-free.
    pub fn push_interleaved<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
        let frames = data.len() / self.channels;
        let fit = frames.min(self.producer.slots());
        if fit > 0
            && let Ok(chunk) = self.producer.write_chunk_uninit(fit)
        {
            let scale = 1.0 / self.channels as f32;
            let mono = data
                .chunks_exact(self.channels)
                .map(|frame| frame.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() * scale);
            let written = chunk.fill_from_iter(mono);
            self.stats
                .frames
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        if fit < frames {
            self.stats
                .overrun_frames
                .fetch_add((frames - fit) as u64, Ordering::Relaxed);
        }
    }
}

/// A running capture: blocks of mono audio at [`BlockSource::sample_rate`].
pub struct Capture {
    stream: Option<cpal::Stream>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    stats: Arc<CaptureStats>,
    blocks: Receiver<Vec<f32>>,
    recycle: Sender<Vec<f32>>,
    current: Vec<f32>,
    device_name: String,
    device_config: String,
    device_rate: u32,
    rate: u32,
    stall_timeout: Duration,
}

impl Capture {
    /// Opens the device and starts capturing.
    pub fn start(config: &CaptureConfig) -> Result<Self, AudioError> {
        let host = device::open_host(config.host)?;
        let device = device::find_device(&host, Direction::Input, config.device_name.as_deref())?;
        let device_name = device::device_name(&device);
        if config.block_seconds.is_nan()
            || config.ring_seconds.is_nan()
            || config.block_seconds <= 0.0
            || config.ring_seconds <= 0.0
        {
            return Err(AudioError::InvalidParameter(
                "block and ring lengths must be positive".into(),
            ));
        }
        // A forced device rate must work as asked. Otherwise prefer the consumer's rate
        // (no resampling) and fall back to the device's default configuration.
        let forced = config.device.rate.is_some();
        let preferred = ConfigRequest {
            rate: config.device.rate.or(config.rate),
            ..config.device
        };
        let mut choices = Vec::new();
        match device::choose_config(&device, Direction::Input, preferred) {
            Ok(c) => choices.push(c),
            Err(e) if forced => return Err(e),
            Err(_) => {}
        }
        if !forced {
            let fallback = device::choose_config(&device, Direction::Input, config.device)?;
            if !choices.contains(&fallback) {
                choices.push(fallback);
            }
        }
        let stats = Arc::new(CaptureStats::default());
        let mut opened = None;
        let mut last_error = None;
        for supported in choices {
            let ring_len =
                ((supported.sample_rate() as f32 * config.ring_seconds) as usize).max(4096);
            let channels = supported.channels() as usize;
            let attempt = |stream_config: &cpal::StreamConfig| {
                let (producer, consumer) = rtrb::RingBuffer::<f32>::new(ring_len);
                let sink = CaptureSink::new(producer, channels, stats.clone());
                build_input_stream(
                    &device,
                    stream_config,
                    supported.sample_format(),
                    sink,
                    stats.clone(),
                )
                .map(|stream| (stream, consumer))
            };
            match device::build_with_fallback(&supported, attempt) {
                Ok((stream, consumer)) => {
                    opened = Some((stream, consumer, supported, ring_len));
                    break;
                }
                Err(e) => {
                    let described = device::describe_config(&supported);
                    last_error = Some(map_build_error(e, &device_name, &described));
                }
            }
        }
        let Some((stream, mut consumer, supported, ring_len)) = opened else {
            return Err(last_error.unwrap_or(AudioError::NoDevice { direction: "input" }));
        };
        let device_rate = supported.sample_rate();
        let rate = config.rate.unwrap_or(device_rate);
        let device_config = device::describe_config(&supported);
        let block_len = ((rate as f32 * config.block_seconds).round() as usize).max(1);
        let mut pipeline = BlockPipeline::new(device_rate, rate, block_len)?;

        // Up to a second of blocks may wait for the consumer; beyond that they are dropped
        // and counted, so a stuck consumer cannot grow memory.
        let queue = ((1.0 / config.block_seconds).ceil() as usize).max(4);
        let (block_tx, block_rx) = crossbeam_channel::bounded::<Vec<f32>>(queue);
        let (recycle_tx, recycle_rx) = crossbeam_channel::bounded::<Vec<f32>>(queue + 2);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("reprise-capture".into())
                .spawn(move || {
                    let _ftz = ScopedFtz::enable();
                    let mut scratch = vec![0.0f32; ring_len];
                    let mut emit = |block: &[f32]| {
                        let mut buf = recycle_rx
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(block.len()));
                        buf.clear();
                        buf.extend_from_slice(block);
                        if block_tx.try_send(buf).is_err() {
                            stats.dropped_blocks.fetch_add(1, Ordering::Relaxed);
                        }
                    };
                    while !stop.load(Ordering::Acquire) {
                        let n = consumer.slots();
                        if n == 0 {
                            std::thread::sleep(Duration::from_millis(2));
                            continue;
                        }
                        let Ok(chunk) = consumer.read_chunk(n) else {
                            continue;
                        };
                        let (a, b) = chunk.as_slices();
                        scratch[..a.len()].copy_from_slice(a);
                        scratch[a.len()..a.len() + b.len()].copy_from_slice(b);
                        chunk.commit_all();
                        pipeline.push(&scratch[..n], &mut emit);
                    }
                })
                .map_err(|e| AudioError::Stream {
                    device: device_name.clone(),
                    detail: format!("cannot start the capture thread: {e}"),
                })?
        };

        stream.play().map_err(|e| AudioError::Stream {
            device: device_name.clone(),
            detail: e.to_string(),
        })?;

        Ok(Self {
            stream: Some(stream),
            worker: Some(worker),
            stop,
            stats,
            blocks: block_rx,
            recycle: recycle_tx,
            current: Vec::new(),
            device_name,
            device_config,
            device_rate,
            rate,
            stall_timeout: config.stall_timeout,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The configuration the device runs, e.g. `2 ch i16 48000 Hz`.
    pub fn device_config(&self) -> &str {
        &self.device_config
    }

    /// The device's sample rate.
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Counters of the stream so far.
    pub fn stats(&self) -> &CaptureStats {
        &self.stats
    }

    /// Stops the stream and the worker.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = stream.pause();
            drop(stream);
        }
        self.stop.store(true, Ordering::Release);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }

    fn failure_error(&self, failure: StreamFailure) -> AudioError {
        AudioError::DeviceLost {
            device: self.device_name.clone(),
            detail: failure.describe().to_owned(),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl BlockSource for Capture {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Waits for the next block. A device that fails or stays silent past the stall
    /// timeout gives an error; blocks captured before the failure are delivered first.
    fn next_block(&mut self) -> Result<Option<&[f32]>, AudioError> {
        let previous = std::mem::take(&mut self.current);
        if previous.capacity() > 0 {
            let _ = self.recycle.try_send(previous);
        }
        let deadline = Instant::now() + self.stall_timeout;
        loop {
            match self.blocks.try_recv() {
                Ok(block) => {
                    self.current = block;
                    return Ok(Some(&self.current));
                }
                Err(TryRecvError::Disconnected) => return Ok(None),
                Err(TryRecvError::Empty) => {}
            }
            if let Some(failure) = self.stats.failure() {
                return Err(self.failure_error(failure));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AudioError::Stalled {
                    device: self.device_name.clone(),
                    seconds: self.stall_timeout.as_secs_f32(),
                });
            }
            // Wake up regularly to notice a failure reported by the error callback.
            let wait = (deadline - now).min(Duration::from_millis(50));
            match self.blocks.recv_timeout(wait) {
                Ok(block) => {
                    self.current = block;
                    return Ok(Some(&self.current));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

fn map_build_error(e: cpal::Error, device: &str, config: &str) -> AudioError {
    match e.kind() {
        cpal::ErrorKind::UnsupportedConfig => AudioError::UnsupportedConfig {
            device: device.to_owned(),
            requested: config.to_owned(),
            supported: e.to_string(),
        },
        cpal::ErrorKind::DeviceNotAvailable => AudioError::DeviceLost {
            device: device.to_owned(),
            detail: e.to_string(),
        },
        _ => AudioError::Stream {
            device: device.to_owned(),
            detail: e.to_string(),
        },
    }
}

fn build_input_stream(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: cpal::SampleFormat,
    sink: CaptureSink,
    stats: Arc<CaptureStats>,
) -> Result<cpal::Stream, cpal::Error> {
    fn build<T>(
        device: &cpal::Device,
        config: &cpal::StreamConfig,
        mut sink: CaptureSink,
        stats: Arc<CaptureStats>,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        device.build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| sink.push_interleaved(data),
            move |err: cpal::Error| stats.record_error(err.kind()),
            Some(Duration::from_secs(5)),
        )
    }
    dispatch_sample_format!(format, build(device, config, sink, stats))
}

//! `reprise devices`, `reprise record` and `reprise play`: the audio and MIDI devices, a WAV
//! file from an input device, and to an output device, through the live capture and playback
//! paths.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use reprise::audio::device::{self, ConfigRequest, HostChoice};
use reprise::audio::wav::{WavFormat, WavSink, WavSource};
use reprise::audio::{BlockSource, Capture, CaptureConfig, Playback, PlaybackConfig};
use reprise::music::live;

/// Arguments of `reprise record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// How long to record, in seconds.
    #[arg(long)]
    seconds: f64,
    /// The WAV file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Input device name (exact, or a unique part of it); the default input if absent.
    #[arg(long)]
    device: Option<String>,
    /// Sample rate of the file; the device's rate if absent. Resampled when they differ.
    #[arg(long)]
    rate: Option<u32>,
    #[command(flatten)]
    device_config: DeviceConfigArgs,
    /// Sample encoding of the file: 16, 24 or f32.
    #[arg(long, default_value = "16")]
    format: WavFormat,
}

/// Arguments of `reprise play`.
#[derive(clap::Args)]
pub struct PlayArgs {
    /// The WAV file to play.
    file: PathBuf,
    /// Output device name (exact, or a unique part of it); the default output if absent.
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    device_config: DeviceConfigArgs,
}

/// The device's own configuration; each is the device's default when absent.
#[derive(clap::Args)]
pub struct DeviceConfigArgs {
    /// Run the device at this rate (an error if it cannot).
    #[arg(long)]
    device_rate: Option<u32>,
    /// Open the device with this many channels (input is mixed down to mono).
    #[arg(long)]
    device_channels: Option<u16>,
    /// Open the device with this sample format: i8, i16, i24, i32, u8, u16, u32, f32, f64, …
    #[arg(long, value_parser = device::parse_sample_format)]
    device_format: Option<cpal::SampleFormat>,
}

impl DeviceConfigArgs {
    pub fn request(&self) -> ConfigRequest {
        ConfigRequest {
            rate: self.device_rate,
            channels: self.device_channels,
            format: self.device_format,
        }
    }
}

/// Lists audio inputs and outputs with their default configuration, and MIDI ports.
pub fn devices(host: HostChoice) -> anyhow::Result<()> {
    let list = device::list_devices(host)?;
    println!("Audio host: {}", list.host);
    for (title, devices) in [
        ("Audio inputs", &list.inputs),
        ("Audio outputs", &list.outputs),
    ] {
        println!("{title}:");
        if devices.is_empty() {
            println!("  (none)");
        }
        for d in devices {
            let mark = if d.is_default { " [default]" } else { "" };
            match &d.default_config {
                Ok(config) => println!("  {}{mark}: {config}", d.name),
                Err(e) => println!("  {}{mark}: (no default configuration: {e})", d.name),
            }
        }
    }
    match live::list_ports() {
        Ok(ports) => {
            for (title, names) in [
                ("MIDI inputs", &ports.inputs),
                ("MIDI outputs", &ports.outputs),
            ] {
                println!("{title}:");
                if names.is_empty() {
                    println!("  (none)");
                }
                for n in names {
                    println!("  {n}");
                }
            }
        }
        Err(e) => println!("MIDI: unavailable: {e}"),
    }
    Ok(())
}

/// Records `args.seconds` of the input into a WAV file; what was captured is kept if the
/// device fails part way.
pub fn record(host: HostChoice, args: RecordArgs) -> anyhow::Result<()> {
    let RecordArgs {
        seconds,
        output,
        device,
        rate,
        device_config,
        format,
    } = args;
    let (output, device_config) = (output.as_path(), device_config.request());
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--seconds must be a positive number (got {seconds})");
    }
    let config = CaptureConfig {
        host,
        device_name: device,
        rate,
        device: device_config,
        ..CaptureConfig::default()
    };
    let mut capture = Capture::start(&config)?;
    let out_rate = capture.sample_rate();
    let wanted = (seconds * out_rate as f64).round() as u64;
    eprintln!(
        "Recording {seconds} s from {:?} ({}) to {} at {out_rate} Hz",
        capture.device_name(),
        capture.device_config(),
        output.display()
    );
    let mut sink = WavSink::create(output, out_rate, format)?;
    let start = Instant::now();
    let mut written = 0u64;
    let result = (|| -> anyhow::Result<()> {
        while written < wanted {
            let Some(block) = capture.next_block()? else {
                bail!("the capture stream ended early");
            };
            let take = block.len().min((wanted - written) as usize);
            sink.write(&block[..take])?;
            written += take as u64;
        }
        Ok(())
    })();
    let elapsed = start.elapsed().as_secs_f64();
    let stats = capture.stats();
    let frames = stats.frames.load(Ordering::Relaxed);
    let overruns = stats.overrun_frames.load(Ordering::Relaxed);
    let dropped = stats.dropped_blocks.load(Ordering::Relaxed);
    let xruns = stats.xruns.load(Ordering::Relaxed);
    capture.stop();
    // Whatever was captured is kept, even when the device failed part way.
    sink.finalize()
        .with_context(|| format!("finishing {}", output.display()))?;
    eprintln!(
        "Wrote {written} samples ({:.3} s). Device delivered {frames} frames in {elapsed:.3} s \
         ({:.0} Hz); overrun frames {overruns}, dropped blocks {dropped}, xruns {xruns}",
        written as f64 / out_rate as f64,
        frames as f64 / elapsed.max(1e-9),
    );
    result
}

/// Plays a WAV file on an output device and reports underruns.
pub fn play(host: HostChoice, args: PlayArgs) -> anyhow::Result<()> {
    let PlayArgs {
        file,
        device,
        device_config,
    } = args;
    let (file, device_config): (&Path, ConfigRequest) = (&file, device_config.request());
    let config = PlaybackConfig {
        host,
        device_name: device,
        device: device_config,
        ..PlaybackConfig::default()
    };
    let mut playback = Playback::start(&config)?;
    let mut source = WavSource::open(file, Some(playback.rate()), 0.05)?;
    eprintln!(
        "Playing {} ({:.2} s) on {:?} at {} Hz",
        file.display(),
        source.info().seconds(),
        playback.device_name(),
        playback.rate()
    );
    while let Some(block) = source.next_block()? {
        playback.write_all(block, Duration::from_secs(3))?;
    }
    playback.drain(Duration::from_secs(5))?;
    let underruns = playback.stats().underrun_frames.load(Ordering::Relaxed);
    playback.stop();
    eprintln!("Done; underrun frames {underruns}");
    Ok(())
}

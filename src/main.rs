//! The `reprise` command line.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use reprise::audio::device::{self, ConfigRequest, HostChoice};
use reprise::audio::wav::{WavFormat, WavSink, WavSource};
use reprise::audio::{BlockSource, Capture, CaptureConfig, Playback, PlaybackConfig};
use reprise::music::live;
use reprise::music::midi_file;
use reprise::render::{self, Instruments, Level, RenderOptions};

#[derive(Parser)]
#[command(
    name = "reprise",
    version,
    about = "Listens and plays along in real time"
)]
struct Cli {
    /// Audio host: default, alsa or jack (jack needs a build with --features jack).
    #[arg(long, global = true, default_value = "default")]
    host: HostChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List audio devices with their default configurations, and MIDI ports.
    Devices,
    /// Record from an input device into a mono WAV file.
    Record {
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
    },
    /// Play a WAV file on an output device (mixed down to mono, copied to every channel).
    Play {
        /// The WAV file to play.
        file: PathBuf,
        /// Output device name (exact, or a unique part of it); the default output if absent.
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        device_config: DeviceConfigArgs,
    },
    /// Transcribe the microphone live: partial results in place, finals as utterances end.
    Listen(cli::speech::ListenArgs),
    /// Transcribe audio files (WAV, FLAC, MP3, Ogg Vorbis) to text, JSON lines, SRT or WebVTT.
    Transcribe(cli::speech::TranscribeArgs),
    /// Continue a seed MIDI file with the music model and write the result as MIDI.
    Continue(cli::music::ContinueArgs),
    /// Music model tools (evaluation).
    Music {
        #[command(subcommand)]
        command: cli::music::MusicCommand,
    },
    /// Call and response with a DAW over MIDI ports: listen to a phrase, answer in time.
    Jam(cli::jam::JamArgs),
    /// Render a MIDI file to a stereo WAV file, with a SoundFont or the built-in synthesizer.
    Render(RenderArgs),
    /// Run the daemon: speech sessions over WebSocket (Vosk protocol), music over HTTP,
    /// health and metrics, until SIGTERM or SIGINT.
    Serve(cli::serve::ServeArgs),
}

#[derive(clap::Args)]
struct RenderArgs {
    /// The MIDI file to render (format 0, 1 or 2).
    input: PathBuf,
    /// The WAV file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// An SF2 SoundFont; the built-in synthesizer plays when absent.
    #[arg(long)]
    soundfont: Option<PathBuf>,
    /// Sample rate of the file: 44100 or 48000.
    #[arg(long, default_value_t = 44_100, value_parser = parse_render_rate)]
    rate: u32,
    /// Gain in dB over the default level (0 dB is about FluidSynth's default level).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "normalize")]
    gain: Option<f32>,
    /// Scale the output so that its peak is at -1 dBFS.
    #[arg(long)]
    normalize: bool,
    /// Turn reverb (and the SoundFont's chorus) off.
    #[arg(long)]
    no_reverb: bool,
    /// Seconds rendered after the last event, for notes and reverb to ring out.
    #[arg(long, default_value_t = 2.0)]
    tail: f64,
    /// Sample encoding of the file: 16, 24 or f32.
    #[arg(long, default_value = "16")]
    format: WavFormat,
    /// Rendering threads (1 or 2; the output is the same for both). Default: both cores.
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_render_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(rate) if render::SUPPORTED_RATES.contains(&rate) => Ok(rate),
        _ => Err(format!("unsupported rate {s:?} (expected 44100 or 48000)")),
    }
}

/// The device's own configuration; each is the device's default when absent.
#[derive(clap::Args)]
struct DeviceConfigArgs {
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
    fn request(&self) -> ConfigRequest {
        ConfigRequest {
            rate: self.device_rate,
            channels: self.device_channels,
            format: self.device_format,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices => devices(cli.host),
        Command::Record {
            seconds,
            output,
            device,
            rate,
            device_config,
            format,
        } => record(
            cli.host,
            seconds,
            &output,
            device,
            rate,
            device_config.request(),
            format,
        ),
        Command::Play {
            file,
            device,
            device_config,
        } => play(cli.host, &file, device, device_config.request()),
        Command::Listen(args) => cli::speech::listen(cli.host, args),
        Command::Transcribe(args) => cli::speech::transcribe(args),
        Command::Continue(args) => cli::music::continue_command(args),
        Command::Music { command } => cli::music::run(command),
        Command::Render(args) => render_file(&args),
        Command::Jam(args) => cli::jam::jam_command(args),
        Command::Serve(args) => cli::serve::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reprise: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn devices(host: HostChoice) -> anyhow::Result<()> {
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

fn record(
    host: HostChoice,
    seconds: f64,
    output: &std::path::Path,
    device: Option<String>,
    rate: Option<u32>,
    device_config: ConfigRequest,
    format: WavFormat,
) -> anyhow::Result<()> {
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

fn play(
    host: HostChoice,
    file: &std::path::Path,
    device: Option<String>,
    device_config: ConfigRequest,
) -> anyhow::Result<()> {
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

fn render_file(args: &RenderArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    let song = midi_file::read_midi_file(&args.input)?;
    let instruments = match &args.soundfont {
        Some(path) => Instruments::SoundFont(render::soundfont::load_soundfont(path)?),
        None => Instruments::BuiltIn,
    };
    let defaults = RenderOptions::default();
    let options = RenderOptions {
        sample_rate: args.rate,
        level: if args.normalize {
            Level::Normalize { peak_dbfs: -1.0 }
        } else {
            Level::GainDb(args.gain.unwrap_or(0.0))
        },
        reverb: !args.no_reverb,
        tail_seconds: args.tail,
        threads: args.threads.unwrap_or(defaults.threads),
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} rendering [{bar:40}] {percent:>3}% {elapsed}/{duration}",
            )?
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let start = Instant::now();
    let summary = render::render_to_wav(
        &song,
        &instruments,
        &options,
        &args.output,
        args.format,
        &mut |done, total| {
            if let Some(bar) = &bar {
                bar.set_length(total);
                bar.set_position(done);
            }
        },
    )
    .with_context(|| format!("rendering {}", args.input.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!(
        "Rendered {} ({:.2} s at {} Hz) in {elapsed:.2} s ({:.1}x real time); peak {:.1} dBFS, RMS {:.1} dBFS{}",
        args.output.display(),
        summary.seconds(),
        summary.sample_rate,
        summary.seconds() / elapsed.max(1e-9),
        render::dbfs(summary.peak),
        render::dbfs(summary.rms),
        if summary.peak > 1.0 && args.format != WavFormat::Float32 {
            " (clipped: lower --gain or use --normalize)"
        } else {
            ""
        },
    );
    Ok(())
}

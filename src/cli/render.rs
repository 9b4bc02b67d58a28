//! `reprise render`: a MIDI file to a stereo WAV file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use reprise::audio::wav::WavFormat;
use reprise::music::midi_file;
use reprise::render::{self, Instruments, Level, RenderOptions};

/// Arguments of `reprise render` (also filled in by `reprise continue --render`).
#[derive(clap::Args)]
pub struct RenderArgs {
    /// The MIDI file to render (format 0, 1 or 2).
    pub(crate) input: PathBuf,
    /// The WAV file to write.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// An SF2 SoundFont; the built-in synthesizer plays when absent.
    #[arg(long)]
    pub(crate) soundfont: Option<PathBuf>,
    /// Sample rate of the file: 44100 or 48000.
    #[arg(long, default_value_t = 44_100, value_parser = parse_render_rate)]
    pub(crate) rate: u32,
    /// Gain in dB over the default level (0 dB is about FluidSynth's default level).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "normalize")]
    pub(crate) gain: Option<f32>,
    /// Scale the output so that its peak is at -1 dBFS.
    #[arg(long)]
    pub(crate) normalize: bool,
    /// Turn reverb (and the SoundFont's chorus) off.
    #[arg(long)]
    pub(crate) no_reverb: bool,
    /// Seconds rendered after the last event, for notes and reverb to ring out.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) tail: f64,
    /// Sample encoding of the file: 16, 24 or f32.
    #[arg(long, default_value = "16")]
    pub(crate) format: WavFormat,
    /// Rendering threads (1 or 2; the output is the same for both). Default: both cores.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

fn parse_render_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(rate) if render::SUPPORTED_RATES.contains(&rate) => Ok(rate),
        _ => Err(format!("unsupported rate {s:?} (expected 44100 or 48000)")),
    }
}

/// Renders `args.input` to `args.output`, with a progress bar on a terminal and a summary.
pub fn render_file(args: &RenderArgs) -> anyhow::Result<()> {
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

//! `reprise music …`: tools around the music models.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use reprise::engine::Format;
use reprise::music::continuation::{
    ContinueOptions, ScaleChoice, VoiceLimit, continue_seed, write_midi,
};
use reprise::music::judge;
use reprise::music::model::{MusicModel, NadeModel, read_split};
use reprise::music::sample::Sampling;
use reprise::music::seed::Seed;

#[derive(Subcommand)]
pub enum MusicCommand {
    /// Exact negative log-likelihood per frame (natural log) of a data split: the mean over all
    /// frames of all pieces of -ln p(frame | previous frames). Prints
    /// `nll_per_frame=<x> frames=<n>` as its last line.
    Eval {
        /// Model folder of an LSTM-NADE model (e.g. models/music-jsb).
        #[arg(long)]
        model: PathBuf,
        /// Data file: {"<split>": [piece, ...]}, a piece a list of frames, a frame a list of
        /// MIDI notes (or [note, onset] pairs).
        #[arg(long)]
        data: PathBuf,
        /// The split to score.
        #[arg(long, default_value = "valid")]
        split: String,
        /// Weight format to run the LSTM in (f32, bf16, int8); the model's own if absent.
        #[arg(long)]
        format: Option<Format>,
    },
    /// Checks a continuation against its seed as a musician would: density, voices, key,
    /// register, silence and invention (see the README). Prints each check and, last,
    /// `passed=<true|false> checks=<passed>/6`.
    Judge {
        /// The seed MIDI file.
        seed: PathBuf,
        /// The continuation: a file `reprise continue` wrote (seed then continuation) or the
        /// continuation alone from time 0.
        continuation: PathBuf,
    },
}

pub fn run(command: MusicCommand) -> anyhow::Result<()> {
    match command {
        MusicCommand::Eval {
            model,
            data,
            split,
            format,
        } => {
            let mut model = NadeModel::load(&model, format)
                .with_context(|| format!("loading the music model {}", model.display()))?;
            let pieces = read_split(&data, &split, &model.config)?;
            let start = std::time::Instant::now();
            let (mut total, mut frames) = (0.0f64, 0usize);
            for piece in &pieces {
                let (nll, n) = model.piece_nll(piece)?;
                total += nll;
                frames += n;
            }
            if frames == 0 {
                anyhow::bail!("split {split:?} of {} has no frames", data.display());
            }
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{} pieces, {frames} frames in {secs:.2} s ({:.1} µs per frame)",
                pieces.len(),
                secs * 1e6 / frames as f64
            );
            println!("nll_per_frame={:.6} frames={frames}", total / frames as f64);
            Ok(())
        }
        MusicCommand::Judge { seed, continuation } => {
            let seed = Seed::read(&seed)?;
            let file = Seed::read(&continuation)?;
            let (notes, start, end) = judge::continuation_of(&seed, &file);
            let verdict = judge::judge(&seed, &notes, start, end)
                .with_context(|| format!("judging {}", continuation.display()))?;
            let checks = verdict.checks();
            for c in &checks {
                let mark = if c.passed { "pass" } else { "FAIL" };
                println!("{mark} {:<9} {}", c.name, c.detail);
            }
            println!(
                "passed={} checks={}/{}",
                verdict.passed(),
                checks.iter().filter(|c| c.passed).count(),
                checks.len()
            );
            Ok(())
        }
    }
}

/// Sampling controls and the model, shared by `reprise continue` and `reprise jam`.
#[derive(clap::Args)]
pub struct GenerationArgs {
    /// Sampling temperature (> 0; below 1 is safer, above 1 wilder).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Nucleus threshold in (0.5, 1]: a note decision whose probability reaches it is taken
    /// without drawing.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Random seed (the same seed gives the same music).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Lock pitches to a key: auto (fitted to the seed or call), off, or e.g. C:major, A:minor.
    #[arg(long, default_value = "off")]
    pub scale: ScaleChoice,
    /// Most notes sounding at once: seed (as many as the seed or call sounds at most), off, or a
    /// number (1 gives a monophonic melody).
    #[arg(long, default_value = "seed")]
    pub max_voices: VoiceLimit,
    /// Model folder; the bundled default continuation model if absent.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Weight format to run the LSTM in (f32, bf16, int8); the model's own if absent.
    #[arg(long)]
    pub format: Option<Format>,
}

impl GenerationArgs {
    /// Temperature and top-p.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
        }
    }

    /// Checks the sampling controls.
    pub fn check(&self) -> anyhow::Result<()> {
        reprise::music::sample::check_controls(self.sampling(), self.max_voices.max())
            .map_err(anyhow::Error::msg)
    }

    /// Loads the model (the bundled default without --model).
    pub fn load_model(&self) -> anyhow::Result<MusicModel> {
        let dir =
            (self.model.clone()).map_or_else(|| reprise::models::find("music-default"), Ok)?;
        MusicModel::load(&dir, self.format)
            .with_context(|| format!("loading the music model {}", dir.display()))
    }
}

/// Arguments of `reprise continue`.
#[derive(clap::Args)]
pub struct ContinueArgs {
    /// Seed MIDI file; without one, Reprise generates from scratch (120 BPM, 4/4).
    seed_file: Option<PathBuf>,
    /// Output MIDI file; with several variations, NAME-1.mid, NAME-2.mid, …
    #[arg(short, long)]
    output: PathBuf,
    /// Bars to add after the seed.
    #[arg(long, default_value_t = 4)]
    bars: u32,
    /// Number of different continuations to write.
    #[arg(long, default_value_t = 1)]
    variations: u32,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Write only the continuation (starting at time 0), not the seed before it.
    #[arg(long)]
    only_continuation: bool,
    /// Also draw the piano roll of seed and continuation into this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Also render the written MIDI to this WAV file (16-bit, 44.1 kHz).
    #[arg(long)]
    render: Option<PathBuf>,
    /// SoundFont for --render; the built-in synthesizer plays when absent.
    #[arg(long, requires = "render")]
    soundfont: Option<PathBuf>,
}

/// `NAME.mid` for one variation, `NAME-k.mid` for several.
pub fn variation_path(path: &std::path::Path, k: u32, total: u32) -> PathBuf {
    if total <= 1 {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{k}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{k}"),
    };
    path.with_file_name(name)
}

pub fn continue_command(args: ContinueArgs) -> anyhow::Result<()> {
    let generation = &args.generation;
    generation.check()?;
    if args.bars == 0 || args.bars > 1000 {
        anyhow::bail!("--bars must be 1..=1000 (got {})", args.bars);
    }
    if args.variations == 0 || args.variations > 100 {
        anyhow::bail!("--variations must be 1..=100 (got {})", args.variations);
    }
    let seed = match &args.seed_file {
        Some(path) => Seed::read(path)?,
        None => Seed::empty(480),
    };
    let mut model = generation.load_model()?;
    for k in 1..=args.variations {
        let opts = ContinueOptions {
            bars: args.bars,
            sampling: generation.sampling(),
            scale: generation.scale,
            max_voices: generation.max_voices.max(),
            fit_voices: generation.max_voices.fit(),
            seed: generation.seed.wrapping_add(k as u64 - 1),
        };
        let start = std::time::Instant::now();
        let cont = continue_seed(&mut model, &seed, &opts)?;
        let secs = start.elapsed().as_secs_f64();
        let out = variation_path(&args.output, k, args.variations);
        std::fs::write(&out, write_midi(&seed, &cont, args.only_continuation))
            .with_context(|| format!("writing {}", out.display()))?;
        let scale = cont
            .scale
            .map(|s| format!(", scale {s}"))
            .unwrap_or_default();
        eprintln!(
            "{}: {} seed notes + {} new notes over {} bars ({} frames in {:.1} ms, {:.1} µs per frame{scale})",
            out.display(),
            seed.notes.len(),
            cont.notes.len(),
            args.bars,
            cont.frames,
            secs * 1e3,
            secs * 1e6 / cont.frames.max(1) as f64,
        );
        if let Some(wav) = &args.render {
            crate::render_file(&crate::RenderArgs {
                input: out.clone(),
                output: variation_path(wav, k, args.variations),
                soundfont: args.soundfont.clone(),
                rate: 44_100,
                gain: None,
                normalize: false,
                no_reverb: false,
                tail: 2.0,
                format: reprise::audio::wav::WavFormat::Int16,
                threads: None,
            })?;
        }
        if let Some(plot) = &args.plot {
            let plot = variation_path(plot, k, args.variations);
            reprise::music::plot::piano_roll(&seed, &cont, &plot)
                .with_context(|| format!("drawing {}", plot.display()))?;
        }
    }
    Ok(())
}

//! `reprise music …`: tools around the music models.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use reprise::engine::Format;
use reprise::music::model::{MusicModel, read_split};

#[derive(Subcommand)]
pub enum MusicCommand {
    /// Exact negative log-likelihood per frame (natural log) of a data split: the mean over all
    /// frames of all pieces of -ln p(frame | previous frames). Prints
    /// `nll_per_frame=<x> frames=<n>` as its last line.
    Eval {
        /// Model folder; the bundled default continuation model if absent.
        #[arg(long)]
        model: Option<PathBuf>,
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
}

pub fn run(command: MusicCommand) -> anyhow::Result<()> {
    match command {
        MusicCommand::Eval {
            model,
            data,
            split,
            format,
        } => {
            let dir = model.unwrap_or_else(|| reprise::models::bundled("music-default"));
            let mut model = MusicModel::load(&dir, format)
                .with_context(|| format!("loading the music model {}", dir.display()))?;
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
    }
}

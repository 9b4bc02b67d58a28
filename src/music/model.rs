//! The music models: an LSTM over piano-roll frames whose NADE output layer gives the joint
//! probability of the next frame's notes (see `docs/model-format.md`, kind `music-nade`), and
//! the event model of [`super::events`] (kind `music-events`); [`MusicModel`] holds either.
//!
//! Frame t's LSTM input is the encoded frame t−1 (zeros at t = 0); the top LSTM output
//! conditions the NADE over frame t's variables.

use std::path::{Path, PathBuf};

use crate::engine::kernels::Isa;
use crate::engine::layers::{Nade, Sampling};
use crate::engine::weights::LayerConfig;
use crate::engine::{EngineError, Format, LstmStack, LstmState, Model, ModelError, StackOptions};

use super::events::EventModel;

/// Why a music model or data file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MusicError {
    /// The model files are broken (see [`ModelError`]).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The files are a valid model but not a music model this build understands.
    #[error("{path}: not a usable music model: {message}")]
    NotMusic { path: PathBuf, message: String },
    /// A data file could not be read or does not follow the benchmark format.
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// An inference call failed (a bug: shapes are fixed at load time).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The model scored every allowed next token as impossible (non-finite scores).
    #[error("the music model gave no usable next token")]
    NoToken,
    /// The caller stopped the work before it finished (see
    /// [`continue_seed_until`](super::continuation::continue_seed_until)).
    #[error("stopped before the end")]
    Stopped,
}

/// How a frame's notes become the NADE's binary variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// One variable per key: sounding.
    Roll,
    /// Two variables per key, interleaved: sounding, then struck at this frame (onset).
    OnsetRoll,
}

/// The `music` section of a music model's config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MusicConfig {
    /// Encoding of frames.
    pub encoding: Encoding,
    /// MIDI note of key 0.
    pub low_note: u8,
    /// Number of keys.
    pub keys: usize,
    /// Frames per quarter note.
    pub steps_per_quarter: u32,
}

impl MusicConfig {
    /// Variables per frame.
    pub fn visible(&self) -> usize {
        match self.encoding {
            Encoding::Roll => self.keys,
            Encoding::OnsetRoll => 2 * self.keys,
        }
    }

    /// The key of a MIDI note, if the model covers it.
    pub fn key(&self, note: u8) -> Option<usize> {
        let k = (note as usize).checked_sub(self.low_note as usize)?;
        (k < self.keys).then_some(k)
    }

    /// Encodes sounding notes (with their onset flags) into `out` (`visible()` values).
    /// Notes outside the model's range are dropped.
    pub fn encode(&self, notes: impl IntoIterator<Item = (u8, bool)>, out: &mut [bool]) {
        out.fill(false);
        for (note, onset) in notes {
            if let Some(k) = self.key(note) {
                match self.encoding {
                    Encoding::Roll => out[k] = true,
                    Encoding::OnsetRoll => {
                        out[2 * k] = true;
                        out[2 * k + 1] = onset;
                    }
                }
            }
        }
    }

    /// Sounding notes of an encoded frame, with their onset flags (always true for `Roll`).
    pub fn decode<'a>(&'a self, frame: &'a [bool]) -> impl Iterator<Item = (u8, bool)> + 'a {
        (0..self.keys).filter_map(move |k| {
            let note = self.low_note + k as u8;
            match self.encoding {
                Encoding::Roll => frame[k].then_some((note, true)),
                Encoding::OnsetRoll => frame[2 * k].then_some((note, frame[2 * k + 1])),
            }
        })
    }
}

fn parse_music(model: &Model) -> Result<MusicConfig, String> {
    if model.config.kind != "music-nade" {
        return Err(format!(
            "kind is {:?}, expected \"music-nade\"",
            model.config.kind
        ));
    }
    let m = model
        .config
        .music
        .as_ref()
        .ok_or("the config has no music section")?;
    let encoding = match m.get("encoding").and_then(|v| v.as_str()) {
        Some("roll") => Encoding::Roll,
        Some("onset-roll") => Encoding::OnsetRoll,
        other => {
            return Err(format!(
                "music.encoding {other:?} is not roll or onset-roll"
            ));
        }
    };
    let int = |key: &str| {
        m.get(key)
            .and_then(|v| v.as_u64())
            .ok_or(format!("music.{key} is missing or not a whole number"))
    };
    let low_note = int("low_note")?;
    let keys = int("keys")? as usize;
    let steps_per_quarter = int("steps_per_quarter")?;
    if low_note as usize + keys > 128 || keys == 0 {
        return Err("music.low_note + music.keys must lie within MIDI notes 0..=127".into());
    }
    if steps_per_quarter == 0 || steps_per_quarter > 96 {
        return Err("music.steps_per_quarter must be 1..=96".into());
    }
    if let Some(input) = m.get("input").and_then(|v| v.as_str())
        && input != "previous-frame"
    {
        return Err(format!("music.input {input:?} is not supported"));
    }
    Ok(MusicConfig {
        encoding,
        low_note: low_note as u8,
        keys,
        steps_per_quarter: steps_per_quarter as u32,
    })
}

/// A loaded LSTM-NADE model with its scratch space (one stream at a time per state).
pub struct NadeModel {
    /// The `music` section.
    pub config: MusicConfig,
    stack: LstmStack,
    nade: Nade,
    input: Vec<f32>,
    cond: Vec<f32>,
    chunk_in: Vec<f32>,
    chunk_out: Vec<f32>,
}

/// Frames (or tokens) per chunk when a music model reads a known piece.
pub(super) const CHUNK: usize = 64;

/// The LSTM layer `name` of a music model, for one stream, read `CHUNK` steps at a time when
/// the input is known, in `format` (the config's own if `None`).
pub(super) fn music_stack(model: &Model, name: &str, format: Option<Format>) -> LstmStack {
    let format = format.unwrap_or(model.config.weight_format);
    let opts = StackOptions {
        max_chunk: CHUNK,
        ..StackOptions::new(format, 1)
    };
    LstmStack::from_model(model, name, opts).expect("the caller checked the layer")
}

impl NadeModel {
    /// Loads `dir` and runs its LSTM in `format` (the config's own format if `None`).
    pub fn load(dir: impl AsRef<Path>, format: Option<Format>) -> Result<NadeModel, MusicError> {
        NadeModel::from_model(Model::load(dir.as_ref())?, format)
    }

    /// An LSTM-NADE model from an already loaded [`Model`].
    pub fn from_model(model: Model, format: Option<Format>) -> Result<NadeModel, MusicError> {
        let not_music = |message: String| MusicError::NotMusic {
            path: model.dir.clone(),
            message,
        };
        let config = parse_music(&model).map_err(not_music)?;
        let (lstm, nade) = match &model.config.layers[..] {
            [
                LayerConfig::Lstm { name: a, .. },
                LayerConfig::Nade {
                    name: b, visible, ..
                },
            ] => {
                if *visible != config.visible() {
                    return Err(not_music(format!(
                        "the NADE has {visible} variables but the encoding needs {}",
                        config.visible()
                    )));
                }
                (a.clone(), b.clone())
            }
            _ => return Err(not_music("the layers must be lstm then nade".into())),
        };
        let stack = music_stack(&model, &lstm, format);
        if stack.input_size() != config.visible() {
            return Err(not_music("the LSTM input must be one encoded frame".into()));
        }
        let nade = Nade::from_model(&model, &nade, Isa::detect()).expect("layer checked above");
        let (n, h) = (config.visible(), stack.hidden_size());
        Ok(NadeModel {
            config,
            input: vec![0.0; n],
            cond: vec![0.0; h],
            chunk_in: vec![0.0; CHUNK * n],
            chunk_out: vec![0.0; CHUNK * h],
            stack,
            nade,
        })
    }

    /// A fresh state (the start of a piece).
    pub fn new_state(&self) -> LstmState {
        self.stack.new_state()
    }

    /// Variables per frame.
    pub fn visible(&self) -> usize {
        self.config.visible()
    }

    /// Advances the LSTM by one frame: `prev` is the previous frame (all false at the start).
    /// Afterwards [`frame_nll`](Self::frame_nll) and [`sample_into`](Self::sample_into) refer
    /// to the next frame.
    pub fn step(&mut self, state: &mut LstmState, prev: &[bool]) -> Result<(), MusicError> {
        for (x, &on) in self.input.iter_mut().zip(prev) {
            *x = if on { 1.0 } else { 0.0 };
        }
        self.stack
            .step_into(std::slice::from_mut(state), &self.input, &mut self.cond)?;
        Ok(())
    }

    /// `-ln p(frame | the frames stepped so far)`.
    pub fn frame_nll(&mut self, frame: &[bool]) -> Result<f64, MusicError> {
        Ok(self.nade.neg_log_prob(&self.cond, frame)?)
    }

    /// Samples the next frame (see [`Nade::sample_into`]).
    pub fn sample_into(
        &mut self,
        sampling: Sampling,
        allow: impl FnMut(usize, &[bool]) -> bool,
        uniform: impl FnMut() -> f32,
        frame: &mut [bool],
    ) -> Result<(), MusicError> {
        Ok(self
            .nade
            .sample_into(&self.cond, sampling, allow, uniform, frame)?)
    }

    /// Total `-ln p` of a whole piece and its frame count, running the LSTM in chunks.
    pub fn piece_nll(&mut self, frames: &[Vec<bool>]) -> Result<(f64, usize), MusicError> {
        let (n, h) = (self.visible(), self.stack.hidden_size());
        let mut state = self.stack.new_state();
        let mut total = 0.0;
        let mut t0 = 0;
        while t0 < frames.len() {
            let tc = (frames.len() - t0).min(CHUNK);
            for t in 0..tc {
                let dst = &mut self.chunk_in[t * n..(t + 1) * n];
                match (t0 + t).checked_sub(1) {
                    None => dst.fill(0.0),
                    Some(p) => {
                        for (x, &on) in dst.iter_mut().zip(&frames[p]) {
                            *x = if on { 1.0 } else { 0.0 };
                        }
                    }
                }
            }
            self.stack.forward_chunk_into(
                &mut state,
                &self.chunk_in[..tc * n],
                &mut self.chunk_out[..tc * h],
            )?;
            for t in 0..tc {
                total += self
                    .nade
                    .neg_log_prob(&self.chunk_out[t * h..(t + 1) * h], &frames[t0 + t])?;
            }
            t0 += tc;
        }
        Ok((total, frames.len()))
    }
}

/// A music model of either kind: the LSTM-NADE over piano-roll frames (`music-nade`, the
/// benchmark models) or the event model (`music-events`, the default continuation model).
pub enum MusicModel {
    /// `music-nade`.
    Nade(Box<NadeModel>),
    /// `music-events`.
    Events(Box<EventModel>),
}

impl MusicModel {
    /// Loads `dir`, whichever kind it holds, and runs its LSTM in `format` (the config's own
    /// format if `None`).
    pub fn load(dir: impl AsRef<Path>, format: Option<Format>) -> Result<MusicModel, MusicError> {
        let model = Model::load(dir.as_ref())?;
        if EventModel::is_events(&model) {
            Ok(MusicModel::Events(Box::new(EventModel::from_model(
                model, format,
            )?)))
        } else {
            Ok(MusicModel::Nade(Box::new(NadeModel::from_model(
                model, format,
            )?)))
        }
    }

    /// Grid steps per quarter note.
    pub fn steps_per_quarter(&self) -> u32 {
        match self {
            MusicModel::Nade(m) => m.config.steps_per_quarter,
            MusicModel::Events(m) => m.config.steps_per_quarter,
        }
    }
}

/// Reads split `split` of a benchmark-format JSON file (`{split: [piece, ...]}`, a piece a list
/// of frames, a frame a list of MIDI notes or of `[note, onset]` pairs) and encodes it.
pub fn read_split(
    path: &Path,
    split: &str,
    config: &MusicConfig,
) -> Result<Vec<Vec<Vec<bool>>>, MusicError> {
    let err = |message: String| MusicError::Data {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let Some(pieces) = doc.get(split) else {
        let names: Vec<&str> = doc
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| v.is_array())
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default();
        return Err(err(format!(
            "no split called {split:?} (splits here: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let bad = |what: &str| err(format!("split {split:?}: {what}"));
    let pieces = pieces
        .as_array()
        .ok_or_else(|| bad("is not a list of pieces"))?;
    let mut out = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let frames = piece
            .as_array()
            .ok_or_else(|| bad("a piece is not a list of frames"))?;
        let mut enc = Vec::with_capacity(frames.len());
        for frame in frames {
            let items = frame
                .as_array()
                .ok_or_else(|| bad("a frame is not a list of notes"))?;
            let mut notes = Vec::with_capacity(items.len());
            for item in items {
                let (note, onset) = match item {
                    serde_json::Value::Number(n) => (n.as_f64(), true),
                    serde_json::Value::Array(pair) if pair.len() == 2 => (
                        pair[0].as_f64(),
                        pair[1]
                            .as_f64()
                            .map(|o| o != 0.0)
                            .or(pair[1].as_bool())
                            .unwrap_or(false),
                    ),
                    _ => (None, false),
                };
                let note = note
                    .filter(|n| n.fract() == 0.0 && (0.0..128.0).contains(n))
                    .ok_or_else(|| bad("a note is not a MIDI note number"))?;
                notes.push((note as u8, onset));
            }
            let mut f = vec![false; config.visible()];
            config.encode(notes, &mut f);
            enc.push(f);
        }
        out.push(enc);
    }
    Ok(out)
}

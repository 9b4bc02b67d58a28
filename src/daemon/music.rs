//! Music over HTTP: `POST /music/continue` continues the MIDI file in the body with the
//! options of `reprise continue`; `POST /music/render` renders the MIDI file in the body to
//! WAV with the options of `reprise render`. Both run on the blocking pool, at most
//! `limits.music_jobs` at a time.

use std::sync::Mutex;

use serde::Deserialize;

use super::config::Limits;
use crate::audio::wav::{WavFormat, encode_wav};
use crate::music::continuation::{ContinueOptions, ScaleChoice, continue_seed, write_midi};
use crate::music::midi_file::parse_midi;
use crate::music::model::MusicModel;
use crate::music::sample::{Sampling, check_controls};
use crate::music::seed::Seed;
use crate::render::{self, Instruments, Level, RenderOptions};

/// Why a music request failed: the message is for the client.
#[derive(Debug, thiserror::Error)]
pub enum MusicRequestError {
    /// The request is wrong (HTTP 400).
    #[error("{0}")]
    Bad(String),
    /// The daemon could not do it (HTTP 500).
    #[error("{0}")]
    Failed(String),
}

/// Query parameters of `POST /music/continue` (all optional; the defaults of `reprise
/// continue`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinueQuery {
    /// Bars to add after the seed (default 4).
    pub bars: Option<u32>,
    /// Sampling temperature (default 1).
    pub temperature: Option<f32>,
    /// Nucleus threshold in (0.5, 1] (default 1).
    pub top_p: Option<f32>,
    /// Random seed (default 1).
    pub seed: Option<u64>,
    /// auto, off, or e.g. C:major (default off).
    pub scale: Option<String>,
    /// Most notes sounding at once.
    pub max_voices: Option<usize>,
    /// Return only the new bars, starting at time 0.
    pub only_continuation: Option<bool>,
    /// Return the result rendered to WAV (16-bit, 44.1 kHz) instead of MIDI.
    pub render: Option<bool>,
}

/// Query parameters of `POST /music/render` (all optional; the defaults of `reprise render`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderQuery {
    /// 44100 or 48000 (default 44100).
    pub rate: Option<u32>,
    /// Gain in dB over the default level.
    pub gain: Option<f32>,
    /// Scale the output so that its peak is at -1 dBFS.
    pub normalize: Option<bool>,
    /// Reverb and chorus (default on).
    pub reverb: Option<bool>,
    /// Seconds rendered after the last event (default 2).
    pub tail: Option<f64>,
    /// 16, 24 or f32 (default 16).
    pub format: Option<String>,
}

/// The music model and the instruments, shared by all requests.
pub struct MusicService {
    model: Option<Mutex<MusicModel>>,
    instruments: Instruments,
}

impl MusicService {
    /// A service with this model (None: rendering only) and instruments.
    pub fn new(model: Option<MusicModel>, instruments: Instruments) -> MusicService {
        MusicService {
            model: model.map(Mutex::new),
            instruments,
        }
    }

    /// Continues the seed in `body` (an empty body generates from scratch); returns MIDI, or
    /// WAV with `render`.
    pub fn continue_midi(
        &self,
        body: &[u8],
        q: &ContinueQuery,
        limits: &Limits,
    ) -> Result<Vec<u8>, MusicRequestError> {
        let bad = MusicRequestError::Bad;
        let model = self
            .model
            .as_ref()
            .ok_or_else(|| bad("no music model is loaded on this server".into()))?;
        let bars = q.bars.unwrap_or(4);
        if bars == 0 || bars > limits.max_bars {
            return Err(bad(format!(
                "bars must be 1 to {} (got {bars})",
                limits.max_bars
            )));
        }
        let sampling = Sampling {
            temperature: q.temperature.unwrap_or(1.0),
            top_p: q.top_p.unwrap_or(1.0),
        };
        check_controls(sampling, q.max_voices).map_err(bad)?;
        let scale = match &q.scale {
            Some(s) => s.parse::<ScaleChoice>().map_err(bad)?,
            None => ScaleChoice::Off,
        };
        let seed = if body.is_empty() {
            Seed::empty(480)
        } else {
            Seed::parse(body).map_err(|e| bad(e.to_string()))?
        };
        let opts = ContinueOptions {
            bars,
            sampling,
            scale,
            max_voices: q.max_voices,
            fit_voices: true,
            seed: q.seed.unwrap_or(1),
        };
        let midi = {
            let mut model = model
                .lock()
                .map_err(|_| MusicRequestError::Failed("the music model is unusable".into()))?;
            let cont = continue_seed(&mut model, &seed, &opts)
                .map_err(|e| MusicRequestError::Failed(e.to_string()))?;
            write_midi(&seed, &cont, q.only_continuation.unwrap_or(false))
        };
        if q.render.unwrap_or(false) {
            return self.render_wav(&midi, &RenderQuery::default(), limits);
        }
        Ok(midi)
    }

    /// Renders the MIDI file in `body` to WAV.
    pub fn render_wav(
        &self,
        body: &[u8],
        q: &RenderQuery,
        limits: &Limits,
    ) -> Result<Vec<u8>, MusicRequestError> {
        let bad = MusicRequestError::Bad;
        let song = parse_midi(body).map_err(|e| bad(e.to_string()))?;
        let format = match &q.format {
            Some(f) => f.parse::<WavFormat>().map_err(bad)?,
            None => WavFormat::Int16,
        };
        let defaults = RenderOptions::default();
        let options = RenderOptions {
            sample_rate: q.rate.unwrap_or(44_100),
            level: if q.normalize.unwrap_or(false) {
                Level::Normalize { peak_dbfs: -1.0 }
            } else {
                Level::GainDb(q.gain.unwrap_or(0.0))
            },
            reverb: q.reverb.unwrap_or(true),
            tail_seconds: q.tail.unwrap_or(2.0),
            threads: defaults.threads,
        };
        let length = song.duration + options.tail_seconds.max(0.0);
        if length.is_nan() || length > limits.max_render_seconds {
            return Err(bad(format!(
                "the song lasts {length:.1} s with its tail; this server renders at most {} s",
                limits.max_render_seconds
            )));
        }
        let (samples, summary) = render::render_to_vec(&song, &self.instruments, &options)
            .map_err(|e| match e {
                render::RenderError::InvalidParameter(m) => bad(m),
                other => MusicRequestError::Failed(other.to_string()),
            })?;
        encode_wav(&samples, summary.sample_rate, 2, format)
            .map_err(|e| MusicRequestError::Failed(e.to_string()))
    }
}

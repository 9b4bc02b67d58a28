//! Music over HTTP: `POST /music/continue` continues the MIDI file in the body with the
//! options of `reprise continue`; `POST /music/render` renders the MIDI file in the body to
//! WAV with the options of `reprise render`. Both run on the blocking pool, at most
//! `limits.music_jobs` at a time. A job asks its [`JobControl`] between frames (or chunks of
//! audio) whether to go on, so one whose client went away, or that ran past
//! `limits.music_seconds`, stops and frees its turn. A job that fails, even by a panic, leaves
//! the service usable: the model's lock is taken back from a panicked job (every continuation
//! starts from a fresh model state).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::config::Limits;
use crate::audio::wav::{WavFormat, encode_wav};
use crate::music::continuation::{ContinueOptions, ScaleChoice, continue_seed_until, write_midi};
use crate::music::midi_file::parse_midi;
use crate::music::model::{MusicError, MusicModel};
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
    /// The job was stopped before the end (HTTP 503).
    #[error("{0}")]
    Stopped(String),
}

/// Why a job was told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Its client closed the connection.
    ClientGone,
    /// It ran past its time limit.
    TimeLimit,
}

/// Tells a running job whether to go on: cancelled from outside (its client went away) or
/// past its deadline.
#[derive(Debug)]
pub struct JobControl {
    deadline: Instant,
    limit: Duration,
    cancelled: AtomicBool,
}

impl JobControl {
    /// A job that may run for `limit` from now.
    pub fn new(limit: Duration) -> JobControl {
        JobControl {
            deadline: Instant::now() + limit,
            limit,
            cancelled: AtomicBool::new(false),
        }
    }

    /// Stops the job at its next check (its client went away).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Why the job must stop now, if it must.
    pub fn stop_reason(&self) -> Option<StopReason> {
        if self.cancelled.load(Ordering::Relaxed) {
            Some(StopReason::ClientGone)
        } else if Instant::now() >= self.deadline {
            Some(StopReason::TimeLimit)
        } else {
            None
        }
    }

    fn stopped(&self) -> MusicRequestError {
        MusicRequestError::Stopped(match self.stop_reason() {
            Some(StopReason::ClientGone) => "the client went away".into(),
            _ => format!(
                "the job ran longer than this server's limit of {} s (limits.music_seconds) \
                 and was stopped; ask for fewer bars or a shorter song",
                self.limit.as_secs_f64()
            ),
        })
    }
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
        control: &JobControl,
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
            // A job that panicked holding the lock left nothing behind that the next one
            // reads: a continuation starts from a fresh state of the model.
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            let mut stop = || control.stop_reason().is_some();
            let cont =
                continue_seed_until(&mut model, &seed, &opts, &mut stop).map_err(|e| match e {
                    MusicError::Stopped => control.stopped(),
                    e => MusicRequestError::Failed(e.to_string()),
                })?;
            write_midi(&seed, &cont, q.only_continuation.unwrap_or(false))
        };
        if q.render.unwrap_or(false) {
            return self.render_wav(&midi, &RenderQuery::default(), limits, control);
        }
        Ok(midi)
    }

    /// Renders the MIDI file in `body` to WAV.
    pub fn render_wav(
        &self,
        body: &[u8],
        q: &RenderQuery,
        limits: &Limits,
        control: &JobControl,
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
        let mut samples = Vec::new();
        let mut sink = |chunk: &[f32]| {
            if control.stop_reason().is_some() {
                return Err(render::RenderError::Stopped);
            }
            samples.extend_from_slice(chunk);
            Ok(())
        };
        let summary = render::render(
            &song,
            &self.instruments,
            &options,
            &mut sink,
            &mut |_, _| {},
        )
        .map_err(|e| match e {
            render::RenderError::InvalidParameter(m) => bad(m),
            render::RenderError::Stopped => control.stopped(),
            other => MusicRequestError::Failed(other.to_string()),
        })?;
        encode_wav(&samples, summary.sample_rate, 2, format)
            .map_err(|e| MusicRequestError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> MusicService {
        let dir = crate::models::bundled("music-default");
        let model = MusicModel::load(&dir, None).expect("the bundled music model loads");
        MusicService::new(Some(model), Instruments::BuiltIn)
    }

    fn query(bars: u32) -> ContinueQuery {
        ContinueQuery {
            bars: Some(bars),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_that_panicked_does_not_take_the_service_down() {
        let music = service();
        let limits = Limits::default();
        let control = JobControl::new(Duration::from_secs(600));
        let before = music
            .continue_midi(&[], &query(1), &limits, &control)
            .unwrap();
        // A job panics while it holds the model (poisoning its lock).
        let model = music.model.as_ref().unwrap();
        let panicked = std::thread::scope(|s| {
            s.spawn(|| {
                let _held = model.lock();
                panic!("a job failed");
            })
            .join()
        });
        assert!(panicked.is_err() && model.is_poisoned());
        // The next request is served, with the same result as before.
        let after = music
            .continue_midi(&[], &query(1), &limits, &control)
            .unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn jobs_stop_when_told_or_out_of_time() {
        let music = service();
        let limits = Limits::default();
        let gone = JobControl::new(Duration::from_secs(600));
        gone.cancel();
        assert_eq!(gone.stop_reason(), Some(StopReason::ClientGone));
        let e = music
            .continue_midi(&[], &query(8), &limits, &gone)
            .unwrap_err();
        assert!(matches!(e, MusicRequestError::Stopped(_)), "{e:?}");
        let late = JobControl::new(Duration::ZERO);
        assert_eq!(late.stop_reason(), Some(StopReason::TimeLimit));
        let e = music
            .continue_midi(&[], &query(8), &limits, &late)
            .unwrap_err();
        assert!(e.to_string().contains("music_seconds"), "{e}");
        let midi = crate::music::continuation::write_midi(
            &Seed::empty(480),
            &crate::music::continuation::Continuation {
                notes: Vec::new(),
                start_tick: 0,
                end_tick: 480 * 4,
                scale: None,
                frames: 16,
            },
            false,
        );
        let e = music
            .render_wav(&midi, &RenderQuery::default(), &limits, &late)
            .unwrap_err();
        assert!(matches!(e, MusicRequestError::Stopped(_)), "{e:?}");
    }
}

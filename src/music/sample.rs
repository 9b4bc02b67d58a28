//! Sampling controls for continuation: temperature and top-p (in [`Sampling`]), a scale lock,
//! a voice limit and a seeded random generator; and the [`Generator`] that steps the model one
//! frame at a time without allocating.

use super::model::{Encoding, MusicError, NadeModel};
use crate::engine::LstmState;
pub use crate::engine::layers::Sampling;

/// A deterministic random generator (SplitMix64): the same seed gives the same music on every
/// machine and in every version of Reprise.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// From a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Major or (natural plus raised seventh) minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ionian.
    Major,
    /// Aeolian with the leading tone allowed.
    Minor,
}

/// A key to lock pitches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// Pitch class of the tonic (C = 0).
    pub tonic: u8,
    /// Mode.
    pub mode: Mode,
}

const NAMES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

impl Scale {
    /// Parses `C:major`, `A:minor`, `F#:major`, `Bb:minor` (case-insensitive names, `#`/`b`).
    pub fn parse(s: &str) -> Option<Scale> {
        let (name, mode) = s.split_once(':')?;
        let mode = match mode.to_ascii_lowercase().as_str() {
            "major" | "maj" => Mode::Major,
            "minor" | "min" => Mode::Minor,
            _ => return None,
        };
        let mut chars = name.chars();
        let base = match chars.next()?.to_ascii_uppercase() {
            'C' => 0,
            'D' => 2,
            'E' => 4,
            'F' => 5,
            'G' => 7,
            'A' => 9,
            'B' => 11,
            _ => return None,
        };
        let shift: i32 = match chars.as_str() {
            "" => 0,
            "#" => 1,
            "b" => -1,
            _ => return None,
        };
        Some(Scale {
            tonic: (base + shift).rem_euclid(12) as u8,
            mode,
        })
    }

    /// Whether a MIDI key belongs to the scale.
    pub fn contains(&self, key: u8) -> bool {
        const MAJOR: [bool; 12] = [
            true, false, true, false, true, true, false, true, false, true, false, true,
        ];
        const MINOR: [bool; 12] = [
            true, false, true, true, false, true, false, true, true, false, true, true,
        ];
        let pc = (key as usize + 12 - self.tonic as usize) % 12;
        match self.mode {
            Mode::Major => MAJOR[pc],
            Mode::Minor => MINOR[pc],
        }
    }

    /// The best-fitting key for pitch-class weights (e.g. total note durations), by correlation
    /// with the Krumhansl–Kessler key profiles. `None` when all weights are zero.
    pub fn detect(weights: &[f64; 12]) -> Option<Scale> {
        const MAJOR: [f64; 12] = [
            6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
        ];
        const MINOR: [f64; 12] = [
            6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
        ];
        if weights.iter().all(|w| *w <= 0.0) {
            return None;
        }
        let corr = |profile: &[f64; 12], tonic: usize| {
            let mx = weights.iter().sum::<f64>() / 12.0;
            let my = profile.iter().sum::<f64>() / 12.0;
            let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
            for pc in 0..12 {
                let x = weights[(pc + tonic) % 12] - mx;
                let y = profile[pc] - my;
                sxy += x * y;
                sxx += x * x;
                syy += y * y;
            }
            sxy / (sxx * syy).sqrt().max(1e-12)
        };
        let mut best = (
            f64::NEG_INFINITY,
            Scale {
                tonic: 0,
                mode: Mode::Major,
            },
        );
        for tonic in 0..12 {
            for (profile, mode) in [(&MAJOR, Mode::Major), (&MINOR, Mode::Minor)] {
                let c = corr(profile, tonic);
                if c > best.0 {
                    best = (
                        c,
                        Scale {
                            tonic: tonic as u8,
                            mode,
                        },
                    );
                }
            }
        }
        Some(best.1)
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Major => "major",
            Mode::Minor => "minor",
        };
        write!(f, "{}:{mode}", NAMES[self.tonic as usize])
    }
}

/// Checks user-given sampling controls: a positive temperature, top-p in (0.5, 1] and a
/// voice limit of at least one. The message names the command-line option.
pub fn check_controls(sampling: Sampling, max_voices: Option<usize>) -> Result<(), String> {
    let t = sampling.temperature;
    if !(t.is_finite() && t > 0.0) {
        return Err(format!("--temperature must be a positive number (got {t})"));
    }
    let p = sampling.top_p;
    if !(p > 0.5 && p <= 1.0) {
        return Err(format!("--top-p must be in (0.5, 1] (got {p})"));
    }
    if max_voices == Some(0) {
        return Err("--max-voices must be at least 1".into());
    }
    Ok(())
}

/// Constraints applied while sampling each frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constraints {
    /// Temperature and top-p.
    pub sampling: Sampling,
    /// Only keys of this scale may sound.
    pub scale: Option<Scale>,
    /// At most this many keys sound at once.
    pub max_voices: Option<usize>,
}

/// Steps a music model one frame at a time. All buffers are allocated by [`Generator::new`];
/// [`prime`](Generator::prime) and [`next_frame`](Generator::next_frame) do not allocate.
pub struct Generator<'m> {
    model: &'m mut NadeModel,
    state: LstmState,
    prev: Vec<bool>,
    frame: Vec<bool>,
    rng: Rng,
}

impl<'m> Generator<'m> {
    /// A generator at the start of a piece.
    pub fn new(model: &'m mut NadeModel, seed: u64) -> Generator<'m> {
        let n = model.visible();
        Generator {
            state: model.new_state(),
            prev: vec![false; n],
            frame: vec![false; n],
            rng: Rng::new(seed),
            model,
        }
    }

    /// The model being stepped.
    pub fn model(&self) -> &NadeModel {
        self.model
    }

    /// Feeds one known frame (sounding keys with onset flags): the model hears it as if it had
    /// generated it.
    pub fn prime(&mut self, notes: &[(u8, bool)]) -> Result<(), MusicError> {
        self.model.step(&mut self.state, &self.prev)?;
        self.model
            .config
            .encode(notes.iter().copied(), &mut self.prev);
        Ok(())
    }

    /// Samples the next frame under `c` and returns it (encoded; decode with
    /// [`MusicConfig::decode`](super::model::MusicConfig::decode)).
    pub fn next_frame(&mut self, c: &Constraints) -> Result<&[bool], MusicError> {
        self.model.step(&mut self.state, &self.prev)?;
        let cfg = self.model.config;
        let prev = &self.prev;
        let rng = &mut self.rng;
        let allow = |i: usize, before: &[bool]| {
            let (key, sounding_var) = match cfg.encoding {
                Encoding::Roll => (i, true),
                Encoding::OnsetRoll => (i / 2, i.is_multiple_of(2)),
            };
            if !sounding_var {
                // An onset needs its key sounding.
                return before[i - 1];
            }
            let note = cfg.low_note + key as u8;
            if let Some(scale) = c.scale
                && !scale.contains(note)
            {
                return false;
            }
            if let Some(max) = c.max_voices {
                let step = if cfg.encoding == Encoding::Roll { 1 } else { 2 };
                if before.iter().step_by(step).filter(|on| **on).count() >= max {
                    return false;
                }
            }
            true
        };
        self.model
            .sample_into(c.sampling, allow, || rng.uniform(), &mut self.frame)?;
        if cfg.encoding == Encoding::OnsetRoll {
            // A key that starts sounding is struck, whatever the onset variable said.
            for k in 0..cfg.keys {
                if self.frame[2 * k] && !prev[2 * k] {
                    self.frame[2 * k + 1] = true;
                }
            }
        }
        self.prev.copy_from_slice(&self.frame);
        Ok(&self.frame)
    }
}

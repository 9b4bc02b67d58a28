//! Does a continuation carry on its seed the way a musician would? Six checks of the notes a
//! model wrote after a seed, each against what the seed itself shows:
//!
//! 1. density: notes per bar between 0.5× and 2× the seed's;
//! 2. texture: the most notes sounding at once at most the seed's most + 1;
//! 3. key: at least 80% of the notes in the seed's key (Krumhansl–Kessler fit of the seed's
//!    pitch classes weighted by length; minor keys allow the leading tone);
//! 4. register: at least 95% of the notes within the seed's pitch range widened by 7 semitones
//!    on each side;
//! 5. continuity: at most one bar with nothing sounding;
//! 6. invention: at least 2 bars that are not exact copies of a seed bar (the same keys at the
//!    same places with the same lengths).
//!
//! Times are the seed's ticks; bars are the seed's (its time signature from tick 0).

use super::continuation::{max_voices, pitch_class_weights};
use super::sample::Scale;
use super::seed::{Note, Seed};

/// Bounds of the checks.
pub const DENSITY: (f64, f64) = (0.5, 2.0);
/// Extra voices allowed over the seed's most.
pub const EXTRA_VOICES: usize = 1;
/// Share of notes that must be in the seed's key.
pub const IN_KEY: f64 = 0.8;
/// Semitones the seed's range is widened by on each side.
pub const RANGE_MARGIN: u8 = 7;
/// Share of notes that must lie in the widened range.
pub const IN_RANGE: f64 = 0.95;
/// Most bars with nothing sounding.
pub const SILENT_BARS: usize = 1;
/// Fewest bars that are not copies of a seed bar.
pub const NEW_BARS: usize = 2;

/// Why a seed and continuation cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeError {
    /// The seed has no pitched notes to compare with.
    #[error("the seed has no pitched notes to judge a continuation against")]
    EmptySeed,
    /// The continuation spans no time.
    #[error("the continuation is empty (it spans no time)")]
    EmptyContinuation,
}

/// The measured figures of one continuation.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Bars of the continuation.
    pub bars: usize,
    /// Notes of the continuation.
    pub notes: usize,
    /// The seed's notes per bar.
    pub seed_density: f64,
    /// The continuation's notes per bar.
    pub density: f64,
    /// The seed's most notes at once.
    pub seed_voices: usize,
    /// The continuation's most notes at once.
    pub voices: usize,
    /// The seed's key.
    pub key: Scale,
    /// Share of the continuation's notes in the key.
    pub in_key: f64,
    /// The seed's lowest and highest key.
    pub range: (u8, u8),
    /// Share of the continuation's notes in the widened range.
    pub in_range: f64,
    /// Bars of the continuation with nothing sounding.
    pub silent_bars: usize,
    /// Bars of the continuation that are not exact copies of a seed bar.
    pub new_bars: usize,
}

/// One check's name and outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// The figures, as a reader would want them.
    pub detail: String,
}

impl Judgement {
    /// The six checks in order.
    pub fn checks(&self) -> [Check; 6] {
        let ratio = if self.seed_density > 0.0 {
            self.density / self.seed_density
        } else {
            0.0
        };
        let (lo, hi) = self.range;
        [
            Check {
                name: "density",
                passed: (DENSITY.0..=DENSITY.1).contains(&ratio),
                detail: format!(
                    "{:.2} notes per bar against the seed's {:.2} ({ratio:.2}×; {}–{}× allowed)",
                    self.density, self.seed_density, DENSITY.0, DENSITY.1
                ),
            },
            Check {
                name: "voices",
                passed: self.voices <= self.seed_voices + EXTRA_VOICES,
                detail: format!(
                    "at most {} at once against the seed's {} (+{EXTRA_VOICES} allowed)",
                    self.voices, self.seed_voices
                ),
            },
            Check {
                name: "key",
                passed: self.in_key >= IN_KEY,
                detail: format!(
                    "{:.0}% of notes in {} (≥ {:.0}%)",
                    100.0 * self.in_key,
                    self.key,
                    100.0 * IN_KEY
                ),
            },
            Check {
                name: "range",
                passed: self.in_range >= IN_RANGE,
                detail: format!(
                    "{:.0}% of notes within {}–{} (the seed's {}–{} ± {RANGE_MARGIN}; ≥ {:.0}%)",
                    100.0 * self.in_range,
                    lo.saturating_sub(RANGE_MARGIN),
                    hi.saturating_add(RANGE_MARGIN).min(127),
                    lo,
                    hi,
                    100.0 * IN_RANGE
                ),
            },
            Check {
                name: "silence",
                passed: self.silent_bars <= SILENT_BARS,
                detail: format!(
                    "{} of {} bars with nothing sounding (≤ {SILENT_BARS})",
                    self.silent_bars, self.bars
                ),
            },
            Check {
                name: "invention",
                passed: self.new_bars >= NEW_BARS,
                detail: format!(
                    "{} of {} bars are not copies of a seed bar (≥ {NEW_BARS})",
                    self.new_bars, self.bars
                ),
            },
        ]
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks().iter().all(|c| c.passed)
    }
}

/// A bar's notes as (key, start in the bar, length cut at the bar line), sorted.
fn bar_signature(notes: &[Note], from: u64, to: u64, out: &mut Vec<(u8, u64, u64)>) {
    out.clear();
    out.extend(
        notes
            .iter()
            .filter(|n| n.start >= from && n.start < to)
            .map(|n| (n.key, n.start - from, n.end.min(to) - n.start)),
    );
    out.sort_unstable();
}

/// Judges `cont`, the notes written from tick `start` to tick `end`, against `seed`.
pub fn judge(seed: &Seed, cont: &[Note], start: u64, end: u64) -> Result<Judgement, JudgeError> {
    if seed.notes.is_empty() {
        return Err(JudgeError::EmptySeed);
    }
    if end <= start {
        return Err(JudgeError::EmptyContinuation);
    }
    let bar = seed.bar_ticks().max(1);
    let bars = (end - start).div_ceil(bar) as usize;
    let seed_bars = seed.padded_end().div_ceil(bar).max(1) as usize;
    let key = Scale::detect(&pitch_class_weights(&seed.notes)).ok_or(JudgeError::EmptySeed)?;
    let lo = seed.notes.iter().map(|n| n.key).min().unwrap_or(0);
    let hi = seed.notes.iter().map(|n| n.key).max().unwrap_or(127);
    let share = |f: &dyn Fn(&Note) -> bool| {
        if cont.is_empty() {
            0.0
        } else {
            cont.iter().filter(|n| f(n)).count() as f64 / cont.len() as f64
        }
    };
    let (wide_lo, wide_hi) = (
        lo.saturating_sub(RANGE_MARGIN),
        hi.saturating_add(RANGE_MARGIN),
    );
    let silent_bars = (0..bars)
        .filter(|&b| {
            let (from, to) = (start + b as u64 * bar, start + (b as u64 + 1) * bar);
            !cont.iter().any(|n| n.start < to && n.end > from)
        })
        .count();
    let mut seed_sigs = Vec::with_capacity(seed_bars);
    for b in 0..seed_bars as u64 {
        let mut sig = Vec::new();
        bar_signature(&seed.notes, b * bar, (b + 1) * bar, &mut sig);
        seed_sigs.push(sig);
    }
    let mut sig = Vec::new();
    let new_bars = (0..bars as u64)
        .filter(|&b| {
            bar_signature(cont, start + b * bar, start + (b + 1) * bar, &mut sig);
            !seed_sigs.contains(&sig)
        })
        .count();
    Ok(Judgement {
        bars,
        notes: cont.len(),
        seed_density: seed.notes.len() as f64 / seed_bars as f64,
        density: cont.len() as f64 / bars as f64,
        seed_voices: max_voices(seed.notes.iter().map(|n| (n.start, n.end))),
        voices: max_voices(cont.iter().map(|n| (n.start, n.end))),
        key,
        in_key: share(&|n| key.contains(n.key)),
        range: (lo, hi),
        in_range: share(&|n| (wide_lo..=wide_hi).contains(&n.key)),
        silent_bars,
        new_bars,
    })
}

/// Splits a MIDI file written after `seed` into its continuation: when `file` starts with the
/// seed's notes (as `reprise continue` writes it), the notes from the seed's last bar line on;
/// otherwise the whole file from tick 0. Ticks are converted to the seed's resolution. Returns
/// the notes, the continuation's start and its end (the file's last event).
pub fn continuation_of(seed: &Seed, file: &Seed) -> (Vec<Note>, u64, u64) {
    let (sp, fp) = (seed.ppq.max(1) as u64, file.ppq.max(1) as u64);
    let scale = |t: u64| ((t as u128 * sp as u128 + fp as u128 / 2) / fp as u128) as u64;
    let notes: Vec<Note> = file
        .notes
        .iter()
        .map(|n| Note {
            start: scale(n.start),
            end: scale(n.end).max(scale(n.start) + 1),
            ..*n
        })
        .collect();
    let end = scale(file.end_tick);
    let holds_seed = !seed.notes.is_empty()
        && seed.notes.iter().all(|s| {
            notes
                .iter()
                .any(|n| n.key == s.key && n.start == s.start && n.end == s.end)
        });
    if holds_seed {
        let start = seed.padded_end();
        let cont = notes.into_iter().filter(|n| n.start >= start).collect();
        (cont, start, end.max(start))
    } else {
        (notes, 0, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: u64 = 480;

    fn note(key: u8, start: u64, len: u64) -> Note {
        Note {
            start,
            end: start + len,
            key,
            velocity: 80,
            channel: 0,
        }
    }

    /// Two bars of C major in 4/4: a four-voice chord per half note.
    fn chorale_seed() -> Seed {
        let mut seed = Seed::empty(Q as u16);
        for (i, chord) in [
            [48, 55, 64, 72],
            [53, 57, 65, 72],
            [55, 59, 62, 67],
            [48, 55, 64, 72],
        ]
        .iter()
        .enumerate()
        {
            for &k in chord {
                seed.notes.push(note(k, i as u64 * 2 * Q, 2 * Q));
            }
        }
        seed.end_tick = 8 * Q;
        seed
    }

    /// The seed's chords moved to new places: a plausible continuation of `bars` bars.
    fn good_continuation(seed: &Seed, bars: u64) -> Vec<Note> {
        let start = seed.padded_end();
        let mut out = Vec::new();
        for b in 0..bars {
            for (i, chord) in [[48, 55, 64, 67], [50, 57, 65, 69]].iter().enumerate() {
                for &k in chord {
                    out.push(note(k, start + b * 4 * Q + i as u64 * 2 * Q, 2 * Q));
                }
            }
        }
        out
    }

    fn failed(seed: &Seed, cont: &[Note], bars: u64) -> Vec<&'static str> {
        let start = seed.padded_end();
        let j = judge(seed, cont, start, start + bars * 4 * Q).unwrap();
        j.checks()
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_plausible_continuation_passes_every_check() {
        let seed = chorale_seed();
        assert_eq!(
            failed(&seed, &good_continuation(&seed, 8), 8),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn each_check_fails_on_what_it_looks_for() {
        let seed = chorale_seed();
        let start = seed.padded_end();
        let good = good_continuation(&seed, 8);
        // A wall of sixteenths on every key of the chords: too dense, too many voices.
        let wall: Vec<Note> = (0..8 * 16)
            .flat_map(|s| (60..70).map(move |k| note(k, start + s * Q / 4, Q / 4)))
            .collect();
        let f = failed(&seed, &wall, 8);
        assert!(f.contains(&"density") && f.contains(&"voices"), "{f:?}");
        // Half the notes a semitone off the key.
        let mut off_key = good.clone();
        for n in off_key.iter_mut().step_by(2) {
            n.key += 1;
        }
        assert!(failed(&seed, &off_key, 8).contains(&"key"));
        // Two octaves up.
        let high: Vec<Note> = good
            .iter()
            .map(|n| Note {
                key: n.key + 24,
                ..*n
            })
            .collect();
        assert!(failed(&seed, &high, 8).contains(&"range"));
        // Only the first six bars filled: two silent bars.
        let short: Vec<Note> = good
            .iter()
            .filter(|n| n.start < start + 6 * 4 * Q)
            .copied()
            .collect();
        assert_eq!(failed(&seed, &short, 8), ["silence"]);
        // The seed's two bars over and over.
        let copies: Vec<Note> = (0..4)
            .flat_map(|r| {
                seed.notes.iter().map(move |n| Note {
                    start: n.start + start + r * 8 * Q,
                    end: n.end + start + r * 8 * Q,
                    ..*n
                })
            })
            .collect();
        assert_eq!(failed(&seed, &copies, 8), ["invention"]);
    }

    #[test]
    fn a_file_holding_the_seed_is_split_at_the_seeds_last_bar_line() {
        let seed = chorale_seed();
        let mut file = seed.clone();
        let cont = good_continuation(&seed, 2);
        file.notes.extend(&cont);
        file.end_tick = seed.padded_end() + 8 * Q;
        // The same file at twice the resolution.
        let mut fine = file.clone();
        fine.ppq = 960;
        for n in &mut fine.notes {
            n.start *= 2;
            n.end *= 2;
        }
        fine.end_tick *= 2;
        for f in [&file, &fine] {
            let (notes, start, end) = continuation_of(&seed, f);
            assert_eq!((notes, start, end), (cont.clone(), 8 * Q, 16 * Q));
        }
        // A file of the continuation alone starts at 0.
        let mut alone = Seed::empty(Q as u16);
        alone.notes = cont
            .iter()
            .map(|n| Note {
                start: n.start - 8 * Q,
                end: n.end - 8 * Q,
                ..*n
            })
            .collect();
        alone.end_tick = 8 * Q;
        let (notes, start, end) = continuation_of(&seed, &alone);
        assert_eq!((notes.len(), start, end), (cont.len(), 0, 8 * Q));
        assert_eq!(judge(&seed, &[], 0, 0), Err(JudgeError::EmptyContinuation));
        assert_eq!(
            judge(&Seed::empty(480), &cont, 0, 8 * Q),
            Err(JudgeError::EmptySeed)
        );
    }
}

//! Seed phrases from standard MIDI files: notes in ticks, tempo, time signature, drums kept
//! apart, and quantisation onto a model's time grid.
//!
//! A seed is read by the one MIDI reader ([`crate::music::midi_file`]), so it hears a file as
//! `reprise render` plays it (the same checks, the same format-2 order, the same tempo map),
//! and is then bounded: at most [`MAX_SEED_BARS`] bars, [`MAX_SEED_QUARTERS`] quarter notes and
//! [`MAX_SEED_SECONDS`] seconds, with bars of at most [`MAX_BAR_QUARTERS`] quarter notes.

use std::path::{Path, PathBuf};

use crate::music::midi_file::{
    self, ChannelMessage, DEFAULT_TEMPO_US_PER_BEAT, MidiFileError, MidiSong,
};

/// The General MIDI drum channel (channel 10, zero-based 9).
pub const DRUM_CHANNEL: u8 = 9;

/// Longest seed, in bars.
pub const MAX_SEED_BARS: u64 = 256;
/// Longest seed, in quarter notes (256 bars of 4/4).
pub const MAX_SEED_QUARTERS: u64 = 1024;
/// Longest seed, in seconds.
pub const MAX_SEED_SECONDS: f64 = 600.0;
/// Longest bar a seed's time signature may give, in quarter notes (e.g. 32/4 or 64/8).
pub const MAX_BAR_QUARTERS: u64 = 32;

/// Why a seed could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a valid standard MIDI file.
    #[error("{path}: not a valid MIDI file: {message}")]
    Invalid { path: PathBuf, message: String },
    /// SMPTE (timecode) timing has no beats to align a continuation to.
    #[error(
        "{path}: uses SMPTE timecode timing; seeds need metrical (ticks per quarter note) timing"
    )]
    Timecode { path: PathBuf },
    /// A valid file outside the limits of a seed (too long, absurd bars or resolution).
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
}

/// A note with its span in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// Start tick.
    pub start: u64,
    /// End tick (after `start`).
    pub end: u64,
    /// MIDI key.
    pub key: u8,
    /// Note-on velocity (1..=127).
    pub velocity: u8,
    /// Zero-based channel.
    pub channel: u8,
}

/// A raw channel event kept as it was (drums, program changes of the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// Tick.
    pub tick: u64,
    /// Status byte and data.
    pub bytes: [u8; 3],
    /// How many of `bytes` are used (2 or 3).
    pub len: u8,
}

/// A seed phrase.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed {
    /// Ticks per quarter note.
    pub ppq: u16,
    /// Microseconds per quarter note at the start.
    pub tempo_us: u32,
    /// Tempo changes after the start: (tick, microseconds per quarter note), in tick order.
    pub tempo_changes: Vec<(u64, u32)>,
    /// Time signature (numerator, denominator).
    pub time_signature: (u8, u8),
    /// Pitched notes (every channel but 10), sorted by start.
    pub notes: Vec<Note>,
    /// Drum-channel events, untouched.
    pub drums: Vec<RawEvent>,
    /// Program changes of pitched channels.
    pub programs: Vec<RawEvent>,
    /// Last tick of any event.
    pub end_tick: u64,
}

impl Seed {
    /// An empty seed (generation from scratch) at 120 BPM in 4/4.
    pub fn empty(ppq: u16) -> Seed {
        Seed {
            ppq,
            tempo_us: DEFAULT_TEMPO_US_PER_BEAT,
            tempo_changes: Vec::new(),
            time_signature: (4, 4),
            notes: Vec::new(),
            drums: Vec::new(),
            programs: Vec::new(),
            end_tick: 0,
        }
    }

    /// Reads a seed from a MIDI file.
    pub fn read(path: &Path) -> Result<Seed, SeedError> {
        let io = |source| SeedError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = match midi_file::read_bytes(path) {
            Ok(bytes) => bytes,
            Err(MidiFileError::Io { source, .. }) => return Err(io(source)),
            Err(e) => {
                return Err(SeedError::Unsupported {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        Seed::parse(&bytes).map_err(|e| {
            let path = path.to_path_buf();
            match e {
                ParseError::Invalid(message) => SeedError::Invalid { path, message },
                ParseError::Timecode => SeedError::Timecode { path },
                ParseError::Unsupported(message) => SeedError::Unsupported { path, message },
            }
        })
    }

    /// Parses a seed from the bytes of a MIDI file.
    pub fn parse(bytes: &[u8]) -> Result<Seed, ParseError> {
        let song = midi_file::parse_midi(bytes).map_err(|e| match e {
            MidiFileError::Invalid { detail, .. } => ParseError::Invalid(detail),
            MidiFileError::Unsupported { detail, .. } => ParseError::Unsupported(detail),
            other => ParseError::Invalid(other.to_string()),
        })?;
        Seed::from_song(&song)
    }

    /// The seed in a song read by [`midi_file::parse_midi`]: its pitched notes, drum events
    /// and program changes in ticks, the tempo map, and the first time signature. The ticks
    /// are scaled up where the file's resolution cannot hold the model grids or a whole bar
    /// (e.g. 1 tick per quarter note in 3/8): then `ppq` is a multiple of the file's.
    pub fn from_song(song: &MidiSong) -> Result<Seed, ParseError> {
        let file_ppq = song.ticks_per_quarter.ok_or(ParseError::Timecode)?;
        if file_ppq == 0 {
            return Err(ParseError::Invalid("0 ticks per quarter note".into()));
        }
        let mut seed = Seed::empty(file_ppq);
        if let Some(sig) = song.time_signatures.first() {
            seed.time_signature = (sig.numerator, sig.denominator);
        }
        let (n, d) = seed.time_signature;
        let bar_quarters = n as f64 * 4.0 / d as f64;
        if bar_quarters > MAX_BAR_QUARTERS as f64 {
            return Err(ParseError::Unsupported(format!(
                "its time signature {n}/{d} makes bars of {bar_quarters} quarter notes; seeds \
                 take bars of at most {MAX_BAR_QUARTERS}"
            )));
        }
        let scale = resolution_scale(file_ppq, n, d).ok_or_else(|| {
            ParseError::Unsupported(format!(
                "its resolution of {file_ppq} ticks per quarter note cannot hold a sixteenth-note \
                 grid and whole bars of {n}/{d}; save it at a multiple of 48 (e.g. 480)"
            ))
        })?;
        seed.ppq = (file_ppq as u64 * scale) as u16;
        seed.end_tick = song.end_tick.saturating_mul(scale);
        let seconds = song.duration;
        let quarters = song.end_tick as f64 / file_ppq as f64;
        for t in &song.tempos {
            match t.tick {
                0 => seed.tempo_us = t.us_per_quarter,
                tick => seed
                    .tempo_changes
                    .push((tick.saturating_mul(scale), t.us_per_quarter)),
            }
        }
        // Open notes per (channel, key): a queue of (start, velocity); a note-off ends the
        // oldest.
        let mut open: Vec<std::collections::VecDeque<(u64, u8)>> =
            vec![Default::default(); 16 * 128];
        for e in &song.events {
            let tick = e.tick.saturating_mul(scale);
            let ch = e.channel & 15;
            if ch == DRUM_CHANNEL {
                let (status, a, b) = e.message.to_raw();
                let len = match e.message {
                    ChannelMessage::ProgramChange { .. }
                    | ChannelMessage::ChannelPressure { .. } => 2,
                    _ => 3,
                };
                seed.drums.push(RawEvent {
                    tick,
                    bytes: [status | ch, a, b],
                    len,
                });
                continue;
            }
            match e.message {
                ChannelMessage::NoteOn { key, velocity } => {
                    open[ch as usize * 128 + key as usize].push_back((tick, velocity));
                }
                ChannelMessage::NoteOff { key, .. } => {
                    if let Some((start, velocity)) =
                        open[ch as usize * 128 + key as usize].pop_front()
                    {
                        seed.notes.push(Note {
                            start,
                            end: tick.max(start.saturating_add(1)),
                            key,
                            velocity,
                            channel: ch,
                        });
                    }
                }
                ChannelMessage::ProgramChange { program } => seed.programs.push(RawEvent {
                    tick,
                    bytes: [0xC0 | ch, program, 0],
                    len: 2,
                }),
                _ => {}
            }
        }
        // Notes never switched off end at the last event (or a quarter note after their start).
        for (slot, starts) in open.iter().enumerate() {
            for &(start, velocity) in starts {
                seed.notes.push(Note {
                    start,
                    end: seed.end_tick.max(start.saturating_add(seed.ppq as u64)),
                    key: (slot % 128) as u8,
                    velocity,
                    channel: (slot / 128) as u8,
                });
            }
        }
        seed.notes.sort_by_key(|n| (n.start, n.key));
        seed.end_tick = seed
            .end_tick
            .max(seed.notes.iter().map(|n| n.end).max().unwrap_or(0));
        // The bounds: a long seed takes memory and time in proportion to its grid frames.
        let bars = seed.padded_end() / seed.bar_ticks();
        let quarters = quarters.max(seed.end_tick as f64 / seed.ppq as f64);
        if bars > MAX_SEED_BARS || quarters > MAX_SEED_QUARTERS as f64 {
            return Err(ParseError::Unsupported(format!(
                "the seed is {bars} bars ({quarters:.0} quarter notes) long; seeds may be at \
                 most {MAX_SEED_BARS} bars and {MAX_SEED_QUARTERS} quarter notes"
            )));
        }
        if seconds > MAX_SEED_SECONDS {
            return Err(ParseError::Unsupported(format!(
                "the seed lasts {seconds:.0} s; seeds may last at most {MAX_SEED_SECONDS:.0} s"
            )));
        }
        Ok(seed)
    }

    /// The tempo (microseconds per quarter note) in force at `tick`.
    pub fn tempo_at(&self, tick: u64) -> u32 {
        self.tempo_changes
            .iter()
            .take_while(|(t, _)| *t <= tick)
            .last()
            .map_or(self.tempo_us, |(_, us)| *us)
    }

    /// Ticks per bar (at least 1, whatever the fields hold).
    pub fn bar_ticks(&self) -> u64 {
        let (n, d) = self.time_signature;
        (self.ppq as u64 * 4 * n.max(1) as u64 / d.max(1) as u64).max(1)
    }

    /// Ticks per frame on a grid of `steps_per_quarter` frames per quarter note (at least 1).
    pub fn step_ticks(&self, steps_per_quarter: u32) -> u64 {
        (self.ppq as u64 / steps_per_quarter.max(1) as u64).max(1)
    }

    /// The seed's length rounded up to whole bars, in ticks (0 for an empty seed).
    pub fn padded_end(&self) -> u64 {
        let last = self
            .notes
            .iter()
            .map(|n| n.end)
            .max()
            .unwrap_or(0)
            .max(self.drums.iter().map(|d| d.tick).max().unwrap_or(0));
        let bar = self.bar_ticks();
        last.div_ceil(bar).saturating_mul(bar)
    }

    /// The pitched notes on a grid of `steps_per_quarter` frames per quarter note, over
    /// `frames` frames: for each frame, the sounding keys (in key order) with a flag saying
    /// whether the key is struck in this frame. A note lasts at least one frame. The work
    /// grows with the notes plus the frames, however long or many the notes are.
    pub fn frames(&self, steps_per_quarter: u32, frames: usize) -> Vec<Vec<(u8, bool)>> {
        let step = self.step_ticks(steps_per_quarter);
        let frame_of =
            |tick: u64| usize::try_from(tick.saturating_add(step / 2) / step).unwrap_or(usize::MAX);
        // Per frame and key: notes starting minus notes ending there, and whether one starts.
        let mut change = vec![0i32; (frames + 1) * 128];
        let mut struck = vec![false; frames * 128];
        for n in &self.notes {
            let on = frame_of(n.start);
            if on >= frames {
                continue;
            }
            let off = frame_of(n.end).max(on + 1).min(frames);
            let key = (n.key & 127) as usize;
            change[on * 128 + key] += 1;
            change[off * 128 + key] -= 1;
            struck[on * 128 + key] = true;
        }
        let mut sounding = [0i32; 128];
        let mut out = Vec::with_capacity(frames);
        for f in 0..frames {
            let mut frame = Vec::new();
            for key in 0..128 {
                sounding[key] += change[f * 128 + key];
                if sounding[key] > 0 {
                    frame.push((key as u8, struck[f * 128 + key]));
                }
            }
            out.push(frame);
        }
        out
    }
}

/// The factor that brings `ppq` ticks per quarter note to a resolution holding the model grids
/// and whole bars of `n`/`d`: the smallest making it a multiple of 48 (grids of 1, 2, 3, 4, 6,
/// 8, 12, 16 steps per quarter note), else of 4 (the sixteenth-note grid), within the 15 bits
/// a MIDI file has for it. None if neither fits.
fn resolution_scale(ppq: u16, n: u8, d: u8) -> Option<u64> {
    let ppq = ppq as u64;
    [48u64, 4].into_iter().find_map(|grid| {
        (1..=grid * 64)
            .map(|k| ppq * k)
            .take_while(|&p| p <= 0x7FFF)
            .find(|&p| p.is_multiple_of(grid) && (p * 4 * n as u64).is_multiple_of(d.max(1) as u64))
            .map(|p| p / ppq)
    })
}

/// Why bytes are not a usable seed (see [`SeedError`] for the file-level error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not a valid standard MIDI file.
    #[error("not a valid MIDI file: {0}")]
    Invalid(String),
    /// SMPTE timing.
    #[error("SMPTE timecode timing is not supported for seeds")]
    Timecode,
    /// A valid file outside the limits of a seed (see the message).
    #[error("{0}")]
    Unsupported(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u4, u7, u15, u24, u28};
    use midly::{
        Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
    };

    fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
        TrackEvent {
            delta: u28::new(delta),
            kind,
        }
    }

    fn note(on: bool, key: u8) -> TrackEventKind<'static> {
        let (key, vel) = (u7::new(key), u7::new(if on { 100 } else { 0 }));
        TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn { key, vel },
        }
    }

    fn signature(n: u8, d_power: u8) -> TrackEventKind<'static> {
        TrackEventKind::Meta(MetaMessage::TimeSignature(n, d_power, 24, 8))
    }

    fn tempo(us: u32) -> TrackEventKind<'static> {
        TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us)))
    }

    fn file(format: Format, ppq: u16, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
        let smf = Smf {
            header: Header::new(format, Timing::Metrical(u15::new(ppq))),
            tracks,
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    /// A single-track file in `n`/2^`d_power` with one note of middle C, `length` ticks long.
    fn one_note(ppq: u16, n: u8, d_power: u8, length: u32) -> Vec<u8> {
        let track = vec![
            ev(0, signature(n, d_power)),
            ev(0, note(true, 60)),
            ev(length, note(false, 60)),
        ];
        file(Format::SingleTrack, ppq, vec![track])
    }

    /// Four notes, each `length` ticks long.
    fn long_notes(ppq: u16, length: u32) -> Vec<u8> {
        let mut track = Vec::new();
        for key in [60, 64, 67, 72] {
            track.push(ev(0, note(true, key)));
            track.push(ev(length, note(false, key)));
        }
        track.push(ev(0, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
        file(Format::SingleTrack, ppq, vec![track])
    }

    #[test]
    fn seeds_too_long_in_bars_or_seconds_are_refused() {
        // The 78-byte seed that made the daemon grow to 22 GB: ppq 1, notes of 2^27 ticks.
        let hostile = long_notes(1, 1 << 27);
        assert!(hostile.len() <= 80, "{}", hostile.len());
        let e = Seed::parse(&hostile).unwrap_err();
        assert!(matches!(e, ParseError::Unsupported(_)), "{e:?}");
        // At ppq 480 it is refused too (the limit of a seed, below the renderer's).
        let e = Seed::parse(&long_notes(480, 1 << 27)).unwrap_err();
        assert!(matches!(e, ParseError::Unsupported(_)), "{e:?}");
        // Too many bars while short in seconds: a very fast tempo.
        let mut track = vec![ev(0, tempo(1000)), ev(0, note(true, 60))];
        track.push(ev(480 * 4 * (MAX_SEED_BARS as u32 + 1), note(false, 60)));
        let e = Seed::parse(&file(Format::SingleTrack, 480, vec![track])).unwrap_err();
        assert!(e.to_string().contains("bars"), "{e}");
        // Too long in seconds while short in bars: a very slow tempo.
        let track = vec![
            ev(0, tempo(16_000_000)),
            ev(0, note(true, 60)),
            ev(480 * 4 * 10, note(false, 60)),
        ];
        let e = Seed::parse(&file(Format::SingleTrack, 480, vec![track])).unwrap_err();
        assert!(e.to_string().contains(" s"), "{e}");
        // A long but allowed seed still reads.
        let seed = Seed::parse(&long_notes(480, 480 * 4 * 50)).unwrap();
        assert_eq!(seed.padded_end(), 480 * 4 * 200);
    }

    #[test]
    fn small_resolutions_get_whole_bars_and_an_exact_grid() {
        // ppq 1 in 3/8: a bar is 1.5 quarter notes, a sixteenth a quarter of a tick. One
        // quarter note.
        let seed = Seed::parse(&one_note(1, 3, 3, 1)).unwrap();
        assert_eq!(seed.time_signature, (3, 8));
        assert_eq!(seed.ppq % 48, 0, "ppq {}", seed.ppq);
        assert_eq!(seed.bar_ticks() * 2, seed.ppq as u64 * 3);
        assert_eq!(seed.step_ticks(4) * 4, seed.ppq as u64);
        // The note lasted one quarter note: four sixteenth frames, struck in the first.
        let frames = seed.frames(4, 6);
        let sounding: Vec<bool> = frames.iter().map(|f| !f.is_empty()).collect();
        assert_eq!(sounding, [true, true, true, true, false, false]);
        assert_eq!(frames[0], [(60, true)]);
        assert_eq!(frames[1], [(60, false)]);
        assert_eq!(seed.padded_end(), seed.bar_ticks());
    }

    #[test]
    fn bar_arithmetic_never_divides_by_zero() {
        // ppq 1 in 1/8 made bar_ticks 0; div_ceil(0) and % 0 then panicked.
        for (n, d_power) in [(1, 3), (1, 6), (3, 6), (5, 4), (1, 0), (32, 2)] {
            let seed = Seed::parse(&one_note(1, n, d_power, 3)).unwrap();
            let bar = seed.bar_ticks();
            assert!(bar > 0);
            // A bar in ticks is exactly n/d whole notes.
            assert_eq!(
                bar * (1 << d_power),
                seed.ppq as u64 * 4 * n as u64,
                "{n}/{d_power}"
            );
            assert_eq!(seed.padded_end() % bar, 0);
        }
        // A seed built by hand with nonsense fields does not panic either.
        let mut seed = Seed::empty(0);
        seed.time_signature = (0, 0);
        seed.notes.push(Note {
            start: 0,
            end: 5,
            key: 60,
            velocity: 90,
            channel: 0,
        });
        assert!(seed.bar_ticks() > 0 && seed.step_ticks(0) > 0);
        let _ = (seed.padded_end(), seed.frames(4, 8));
    }

    #[test]
    fn bars_longer_than_the_limit_are_refused() {
        let e = Seed::parse(&one_note(480, 255, 0, 4)).unwrap_err();
        assert!(e.to_string().contains("255/1"), "{e}");
    }

    #[test]
    fn a_seed_hears_the_file_as_the_renderer_plays_it() {
        // Format 2: the second sequence starts when the first ends, at its own tempo.
        let bytes = file(
            Format::Sequential,
            96,
            vec![
                vec![
                    ev(0, tempo(400_000)),
                    ev(0, note(true, 60)),
                    ev(192, note(false, 60)),
                ],
                vec![
                    ev(0, tempo(250_000)),
                    ev(0, note(true, 62)),
                    ev(96, note(false, 62)),
                ],
            ],
        );
        let song = crate::music::midi_file::parse_midi(&bytes).unwrap();
        let seed = Seed::parse(&bytes).unwrap();
        let notes: Vec<(u64, u64, u8)> =
            seed.notes.iter().map(|n| (n.start, n.end, n.key)).collect();
        let k = seed.ppq as u64 / 96;
        assert_eq!(notes, [(0, 192 * k, 60), (192 * k, 288 * k, 62)]);
        assert_eq!(
            (seed.tempo_us, seed.tempo_changes.clone()),
            (400_000, vec![(192 * k, 250_000)])
        );
        // Each note-on's time in seconds, from the seed's ticks and tempo map, is the
        // renderer's.
        let seconds = |tick: u64| {
            let mut t = 0.0;
            let mut at = 0;
            let mut us = seed.tempo_us;
            for &(change, next) in seed.tempo_changes.iter().filter(|c| c.0 <= tick) {
                t += (change - at) as f64 * us as f64 * 1e-6 / seed.ppq as f64;
                (at, us) = (change, next);
            }
            t + (tick - at) as f64 * us as f64 * 1e-6 / seed.ppq as f64
        };
        let ons: Vec<f64> = song
            .events
            .iter()
            .filter(|e| matches!(e.message, ChannelMessage::NoteOn { .. }))
            .map(|e| e.seconds)
            .collect();
        let seed_ons: Vec<f64> = seed.notes.iter().map(|n| seconds(n.start)).collect();
        assert_eq!(ons.len(), 2);
        for (a, b) in ons.iter().zip(&seed_ons) {
            assert!((a - b).abs() < 1e-9, "{ons:?} {seed_ons:?}");
        }
        // A truncated file is refused by both.
        let cut = &bytes[..bytes.len() - 3];
        assert!(crate::music::midi_file::parse_midi(cut).is_err());
        let e = Seed::parse(cut).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn frames_match_a_note_by_note_reference() {
        let mut seed = Seed::empty(480);
        let mut x = 12345u64;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let start = x % (480 * 16);
            let len = 1 + (x >> 20) % 2000;
            seed.notes.push(Note {
                start,
                end: start + len,
                key: 40 + (x >> 40) as u8 % 30,
                velocity: 80,
                channel: 0,
            });
        }
        seed.notes.sort_by_key(|n| (n.start, n.key));
        let frames = 70;
        let step = seed.step_ticks(4);
        let mut reference = vec![Vec::<(u8, bool)>::new(); frames];
        for n in &seed.notes {
            let on = ((n.start + step / 2) / step) as usize;
            let off = (((n.end + step / 2) / step) as usize).max(on + 1);
            for (f, frame) in reference
                .iter_mut()
                .enumerate()
                .take(off.min(frames))
                .skip(on)
            {
                if let Some(slot) = frame.iter_mut().find(|(k, _)| *k == n.key) {
                    slot.1 |= f == on;
                } else {
                    frame.push((n.key, f == on));
                }
            }
        }
        for frame in &mut reference {
            frame.sort();
        }
        assert_eq!(seed.frames(4, frames), reference);
    }
}

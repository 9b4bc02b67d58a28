//! Seed phrases from standard MIDI files: notes in ticks, tempo, time signature, drums kept
//! apart, and quantisation onto a model's time grid.

use std::path::{Path, PathBuf};

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

/// The General MIDI drum channel (channel 10, zero-based 9).
pub const DRUM_CHANNEL: u8 = 9;

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
            tempo_us: 500_000,
            time_signature: (4, 4),
            notes: Vec::new(),
            drums: Vec::new(),
            programs: Vec::new(),
            end_tick: 0,
        }
    }

    /// Reads a seed from a MIDI file.
    pub fn read(path: &Path) -> Result<Seed, SeedError> {
        let bytes = std::fs::read(path).map_err(|source| SeedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Seed::parse(&bytes).map_err(|e| match e {
            ParseError::Invalid(message) => SeedError::Invalid {
                path: path.to_path_buf(),
                message,
            },
            ParseError::Timecode => SeedError::Timecode {
                path: path.to_path_buf(),
            },
        })
    }

    /// Parses a seed from the bytes of a MIDI file.
    pub fn parse(bytes: &[u8]) -> Result<Seed, ParseError> {
        crate::music::midi_file::check_timing(bytes).map_err(ParseError::Invalid)?;
        let smf = Smf::parse(bytes).map_err(|e| ParseError::Invalid(e.to_string()))?;
        let ppq = match smf.header.timing {
            Timing::Metrical(t) if t.as_int() > 0 => t.as_int(),
            Timing::Metrical(_) => {
                return Err(ParseError::Invalid("zero ticks per quarter note".into()));
            }
            Timing::Timecode(..) => return Err(ParseError::Timecode),
        };
        let mut seed = Seed::empty(ppq);
        let (mut tempo_tick, mut sig_tick) = (u64::MAX, u64::MAX);
        // Open notes per (channel, key): a stack of (start, velocity).
        let mut open: Vec<Vec<(u64, u8)>> = vec![Vec::new(); 16 * 128];
        for track in &smf.tracks {
            let mut tick = 0u64;
            for ev in track {
                tick += ev.delta.as_int() as u64;
                seed.end_tick = seed.end_tick.max(tick);
                match ev.kind {
                    TrackEventKind::Meta(MetaMessage::Tempo(t)) if tick < tempo_tick => {
                        tempo_tick = tick;
                        seed.tempo_us = t.as_int().max(1);
                    }
                    TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, _, _))
                        if tick < sig_tick =>
                    {
                        sig_tick = tick;
                        if n > 0 && d < 7 {
                            seed.time_signature = (n, 1 << d);
                        }
                    }
                    TrackEventKind::Midi { channel, message } => {
                        let ch = channel.as_int();
                        if ch == DRUM_CHANNEL {
                            let mut buf = Vec::with_capacity(3);
                            midly::live::LiveEvent::Midi { channel, message }
                                .write_std(&mut buf)
                                .map_err(|e| ParseError::Invalid(e.to_string()))?;
                            let mut bytes = [0u8; 3];
                            bytes[..buf.len().min(3)].copy_from_slice(&buf[..buf.len().min(3)]);
                            seed.drums.push(RawEvent {
                                tick,
                                bytes,
                                len: buf.len().min(3) as u8,
                            });
                            continue;
                        }
                        match message {
                            MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                                open[ch as usize * 128 + key.as_int() as usize]
                                    .push((tick, vel.as_int()));
                            }
                            MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                                let slot = &mut open[ch as usize * 128 + key.as_int() as usize];
                                if !slot.is_empty() {
                                    let (start, velocity) = slot.remove(0);
                                    seed.notes.push(Note {
                                        start,
                                        end: tick.max(start + 1),
                                        key: key.as_int(),
                                        velocity,
                                        channel: ch,
                                    });
                                }
                            }
                            MidiMessage::ProgramChange { program } => {
                                seed.programs.push(RawEvent {
                                    tick,
                                    bytes: [0xC0 | ch, program.as_int(), 0],
                                    len: 2,
                                })
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        // Notes never switched off end at the last event (or a quarter note after their start).
        for (slot, starts) in open.iter().enumerate() {
            for &(start, velocity) in starts {
                seed.notes.push(Note {
                    start,
                    end: seed.end_tick.max(start + ppq as u64),
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
        Ok(seed)
    }

    /// Ticks per bar.
    pub fn bar_ticks(&self) -> u64 {
        let (n, d) = self.time_signature;
        self.ppq as u64 * 4 * n as u64 / d as u64
    }

    /// Ticks per frame on a grid of `steps_per_quarter` frames per quarter note.
    pub fn step_ticks(&self, steps_per_quarter: u32) -> u64 {
        (self.ppq as u64 / steps_per_quarter as u64).max(1)
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
        last.div_ceil(self.bar_ticks()) * self.bar_ticks()
    }

    /// The pitched notes on a grid of `steps_per_quarter` frames per quarter note, over
    /// `frames` frames: for each frame, the sounding keys with a flag saying whether the key is
    /// struck in this frame. A note lasts at least one frame.
    pub fn frames(&self, steps_per_quarter: u32, frames: usize) -> Vec<Vec<(u8, bool)>> {
        let step = self.step_ticks(steps_per_quarter);
        let mut out = vec![Vec::new(); frames];
        for n in &self.notes {
            let on = ((n.start + step / 2) / step) as usize;
            let off = (((n.end + step / 2) / step) as usize).max(on + 1);
            for (f, frame) in out.iter_mut().enumerate().take(off.min(frames)).skip(on) {
                if let Some(slot) = frame.iter_mut().find(|(k, _)| *k == n.key) {
                    slot.1 |= f == on;
                } else {
                    frame.push((n.key, f == on));
                }
            }
        }
        out
    }
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
}

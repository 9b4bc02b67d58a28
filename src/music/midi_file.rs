//! Standard MIDI files: reading them into channel events timed in seconds.
//!
//! This is Reprise's one MIDI reader: rendering, music seeds and the daemon all read files
//! through [`parse_midi`], with one set of limits ([`MAX_FILE_BYTES`], [`MAX_SONG_SECONDS`]).
//! It checks that every chunk is complete, follows the file's tempo map (tempo changes in any
//! track), reads all three formats (0: one track; 1: parallel tracks sharing one tempo map;
//! 2: independent sequences, played one after another, each with its own tempo) and both
//! kinds of timing (ticks per quarter note, or SMPTE frames and subframes, where tempo events
//! do not apply). The result, a [`MidiSong`], gives every event both its time in seconds and
//! its tick on the song's one tick line (format-2 sequences follow each other there too),
//! with the tempo map and time signatures in ticks; the renderer reads the seconds and music
//! seeds the ticks, so both hear the same song, and MIDI made in memory goes through the same
//! path as a file.

use std::path::{Path, PathBuf};

use midly::{Format, MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

/// Tempo before the first tempo event: 120 beats per minute.
pub const DEFAULT_TEMPO_US_PER_BEAT: u32 = 500_000;

/// Longest song accepted, in seconds (a limit against files whose timing is absurd).
pub const MAX_SONG_SECONDS: f64 = 6.0 * 3600.0;

/// Largest MIDI file accepted, in bytes (the largest real songs are a few hundred KiB; every
/// event read costs memory, so this bounds what one file can take).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// What happens on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelMessage {
    /// A key is pressed; velocity 1–127 (a note-on with velocity 0 is read as a
    /// [`ChannelMessage::NoteOff`]).
    NoteOn { key: u8, velocity: u8 },
    /// A key is released (with its release velocity, 0 for a note-on of velocity 0).
    NoteOff { key: u8, velocity: u8 },
    /// A controller (CC) changes: 7 volume, 10 pan, 11 expression, 64 sustain, …
    Controller { controller: u8, value: u8 },
    /// The instrument changes (General MIDI program 0–127).
    ProgramChange { program: u8 },
    /// Pitch bend, -8192 to 8191 (0 is no bend).
    PitchBend { bend: i16 },
    /// Channel pressure (aftertouch), 0–127.
    ChannelPressure { pressure: u8 },
    /// Pressure on one key, 0–127.
    KeyPressure { key: u8, pressure: u8 },
}

impl ChannelMessage {
    /// The message as MIDI status nibble and two data bytes (0 where unused).
    pub fn to_raw(self) -> (u8, u8, u8) {
        match self {
            Self::NoteOff { key, velocity } => (0x80, key, velocity),
            Self::NoteOn { key, velocity } => (0x90, key, velocity),
            Self::KeyPressure { key, pressure } => (0xA0, key, pressure),
            Self::Controller { controller, value } => (0xB0, controller, value),
            Self::ProgramChange { program } => (0xC0, program, 0),
            Self::ChannelPressure { pressure } => (0xD0, pressure, 0),
            Self::PitchBend { bend } => {
                let v = (bend as i32 + 8192).clamp(0, 16383) as u16;
                (0xE0, (v & 0x7F) as u8, (v >> 7) as u8)
            }
        }
    }
}

/// A channel message at a time in seconds from the start of the song.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimedEvent {
    /// Seconds from the start.
    pub seconds: f64,
    /// Tick on the song's tick line (see [`MidiSong`]).
    pub tick: u64,
    /// MIDI channel 0–15 (channel 9 is "channel 10", the drums).
    pub channel: u8,
    pub message: ChannelMessage,
}

/// A tempo change on the song's tick line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TempoChange {
    /// Tick from which it holds.
    pub tick: u64,
    /// Microseconds per quarter note.
    pub us_per_quarter: u32,
}

/// A time signature on the song's tick line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSignature {
    /// Tick from which it holds.
    pub tick: u64,
    /// Beats per bar (at least 1).
    pub numerator: u8,
    /// The beat's note value: 1, 2, 4, … 64.
    pub denominator: u8,
}

/// A song as channel events in time order.
///
/// Ticks: format 0 and 1 files have one tick line; the sequences of a format-2 file are laid
/// one after another on it (each starts where the one before ended, at the default tempo
/// unless it sets its own), so ticks and seconds always agree through [`MidiSong::tempos`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MidiSong {
    /// Events sorted by time; events at the same time keep the file's order.
    pub events: Vec<TimedEvent>,
    /// Time of the last event of any kind (end-of-track included), in seconds.
    pub duration: f64,
    /// Ticks per quarter note; `None` with SMPTE timing (whose ticks are subframes).
    pub ticks_per_quarter: Option<u16>,
    /// Tempo changes in tick order (empty with SMPTE timing). Before the first,
    /// [`DEFAULT_TEMPO_US_PER_BEAT`] holds.
    pub tempos: Vec<TempoChange>,
    /// Valid time-signature events in tick order.
    pub time_signatures: Vec<TimeSignature>,
    /// Tick of the last event of any kind (end-of-track included).
    pub end_tick: u64,
}

/// Errors reading a MIDI file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MidiFileError {
    /// The file cannot be read (the operating system's error).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid standard MIDI file.
    #[error("{}not a valid MIDI file: {detail}", origin(path))]
    Invalid {
        path: Option<PathBuf>,
        detail: String,
    },
    /// The file is valid but outside what Reprise accepts (see the detail).
    #[error("{}unsupported MIDI file: {detail}", origin(path))]
    Unsupported {
        path: Option<PathBuf>,
        detail: String,
    },
}

fn origin(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl MidiFileError {
    fn with_path(self, path: &Path) -> Self {
        match self {
            Self::Invalid { detail, .. } => Self::Invalid {
                path: Some(path.to_owned()),
                detail,
            },
            Self::Unsupported { detail, .. } => Self::Unsupported {
                path: Some(path.to_owned()),
                detail,
            },
            other => other,
        }
    }
}

/// Reads and parses a MIDI file.
pub fn read_midi_file(path: &Path) -> Result<MidiSong, MidiFileError> {
    let bytes = read_bytes(path)?;
    parse_midi(&bytes).map_err(|e| e.with_path(path))
}

/// Reads a file's bytes, at most [`MAX_FILE_BYTES`] of them (a larger file is refused
/// without being read whole).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, MidiFileError> {
    use std::io::Read;
    let io = |source| MidiFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    check_size(bytes.len()).map_err(|e| e.with_path(path))?;
    Ok(bytes)
}

fn check_size(len: usize) -> Result<(), MidiFileError> {
    if len as u64 > MAX_FILE_BYTES {
        return Err(MidiFileError::Unsupported {
            path: None,
            detail: format!(
                "the file is larger than the limit of {} MiB",
                MAX_FILE_BYTES >> 20
            ),
        });
    }
    Ok(())
}

/// Refuses SMPTE timing of -128 frames per second, which no file can mean: midly negates
/// the byte, which overflows (a panic where overflow checks are on). midly reads every header
/// chunk it meets, a second one among the tracks too, so every "MThd" is checked.
pub(crate) fn check_timing(bytes: &[u8]) -> Result<(), String> {
    let bad = bytes
        .windows(4)
        .enumerate()
        .any(|(at, w)| w == b"MThd" && bytes.get(at + 12) == Some(&0x80));
    if bad {
        Err("invalid SMPTE timing (-128 frames per second)".into())
    } else {
        Ok(())
    }
}

/// Parses a standard MIDI file held in memory.
pub fn parse_midi(bytes: &[u8]) -> Result<MidiSong, MidiFileError> {
    check_size(bytes.len())?;
    check_chunks(bytes)?;
    check_timing(bytes).map_err(|detail| MidiFileError::Invalid { path: None, detail })?;
    let smf = Smf::parse(bytes).map_err(|e| MidiFileError::Invalid {
        path: None,
        detail: e.to_string(),
    })?;
    song_from_smf(&smf)
}

/// Checks that every chunk the file announces is complete. midly reads a truncated
/// track as far as it goes; Reprise reports the file as damaged instead.
fn check_chunks(bytes: &[u8]) -> Result<(), MidiFileError> {
    let invalid = |detail: String| MidiFileError::Invalid { path: None, detail };
    if bytes.len() < 14 || &bytes[..4] != b"MThd" {
        return Err(invalid("no MIDI header (MThd) at the start".into()));
    }
    let mut offset = 0usize;
    let mut tracks = 0usize;
    while offset + 8 <= bytes.len() {
        let len = u32::from_be_bytes([
            bytes[offset + 4],
            bytes[offset + 5],
            bytes[offset + 6],
            bytes[offset + 7],
        ]) as usize;
        let end = offset.saturating_add(8).saturating_add(len);
        if end > bytes.len() {
            return Err(invalid(format!(
                "the file ends inside {} (truncated: {} of {} bytes)",
                if offset == 0 {
                    "its header".to_string()
                } else {
                    format!("track {}", tracks + 1)
                },
                bytes.len() - offset - 8,
                len
            )));
        }
        if &bytes[offset..offset + 4] == b"MTrk" {
            tracks += 1;
        }
        offset = end;
    }
    let announced = u16::from_be_bytes([bytes[10], bytes[11]]) as usize;
    if offset < bytes.len() || tracks < announced {
        return Err(invalid(format!(
            "the file ends early (truncated): the header announces {announced} tracks, \
             {tracks} are complete"
        )));
    }
    Ok(())
}

/// Converts a parsed file to timed events.
pub fn song_from_smf(smf: &Smf) -> Result<MidiSong, MidiFileError> {
    let clock = match smf.header.timing {
        Timing::Metrical(tpb) if tpb.as_int() == 0 => {
            return Err(MidiFileError::Invalid {
                path: None,
                detail: "the header gives 0 ticks per quarter note".into(),
            });
        }
        Timing::Metrical(tpb) => Clock::Metrical(tpb.as_int() as f64),
        Timing::Timecode(fps, subframes) => {
            let per_second = fps.as_f32() as f64 * subframes as f64;
            if per_second <= 0.0 {
                return Err(MidiFileError::Invalid {
                    path: None,
                    detail: "the SMPTE timing has 0 subframes per frame".into(),
                });
            }
            Clock::Timecode(per_second)
        }
    };
    let mut song = MidiSong {
        ticks_per_quarter: match smf.header.timing {
            Timing::Metrical(tpb) => Some(tpb.as_int()),
            Timing::Timecode(..) => None,
        },
        ..MidiSong::default()
    };
    match smf.header.format {
        Format::SingleTrack | Format::Parallel => {
            let tracks: Vec<&[midly::TrackEvent]> = smf.tracks.iter().map(|t| &t[..]).collect();
            merge_tracks(&mut song, &tracks, clock, false);
        }
        Format::Sequential => {
            for track in &smf.tracks {
                merge_tracks(&mut song, &[&track[..]], clock, true);
            }
        }
    }
    if song.duration.is_nan() || song.duration > MAX_SONG_SECONDS {
        return Err(MidiFileError::Unsupported {
            path: None,
            detail: format!(
                "the song lasts {:.0} s, longer than the limit of {MAX_SONG_SECONDS:.0} s",
                song.duration
            ),
        });
    }
    Ok(song)
}

#[derive(Clone, Copy)]
enum Clock {
    /// Ticks per quarter note; tempo events set the quarter note's length.
    Metrical(f64),
    /// Ticks per second, fixed.
    Timecode(f64),
}

/// Adds tracks that play together to `song`, starting where it ends (its `end_tick` and
/// `duration`), and moves its end past them. `own_tempo`: the tracks start at the default
/// tempo (a format-2 sequence) instead of the tempo in force.
fn merge_tracks(
    song: &mut MidiSong,
    tracks: &[&[midly::TrackEvent]],
    clock: Clock,
    own_tempo: bool,
) {
    // (tick, track, index in track, event); sorting by all three keeps the file's order for
    // simultaneous events.
    let offset = song.end_tick;
    let mut all: Vec<(u64, usize, usize, &TrackEventKind)> = Vec::new();
    let mut last_tick = offset;
    for (t, track) in tracks.iter().enumerate() {
        let mut tick = offset;
        for (i, event) in track.iter().enumerate() {
            tick += event.delta.as_int() as u64;
            all.push((tick, t, i, &event.kind));
        }
        last_tick = last_tick.max(tick);
    }
    all.sort_by_key(|&(tick, t, i, _)| (tick, t, i));

    let mut tempo = TempoCursor::new(clock, offset, song.duration);
    if let Clock::Metrical(_) = clock {
        let in_force = song.tempos.last().map(|t| t.us_per_quarter);
        let start = if own_tempo {
            Some(DEFAULT_TEMPO_US_PER_BEAT)
        } else {
            in_force
        };
        if let Some(us) = start {
            tempo.set_tempo(offset, us);
            if in_force.is_some_and(|t| t != us) {
                set_tempo_from(&mut song.tempos, offset, us);
            }
        }
    }
    for &(tick, _, _, kind) in &all {
        let seconds = tempo.seconds_at(tick);
        match *kind {
            TrackEventKind::Meta(MetaMessage::Tempo(us)) if tempo.set_tempo(tick, us.as_int()) => {
                set_tempo_from(&mut song.tempos, tick, us.as_int());
            }
            TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, power, _, _))
                if numerator > 0 && power < 7 =>
            {
                song.time_signatures.push(TimeSignature {
                    tick,
                    numerator,
                    denominator: 1 << power,
                });
            }
            TrackEventKind::Midi { channel, message } => {
                if let Some(message) = convert(message) {
                    song.events.push(TimedEvent {
                        seconds,
                        tick,
                        channel: channel.as_int(),
                        message,
                    });
                }
            }
            _ => {}
        }
    }
    song.duration = tempo.seconds_at(last_tick);
    song.end_tick = last_tick;
}

/// Adds a tempo change to a tempo map in tick order; a later change at the same tick
/// replaces the earlier one (only the last is heard).
fn set_tempo_from(tempos: &mut Vec<TempoChange>, tick: u64, us_per_quarter: u32) {
    match tempos.last_mut() {
        Some(last) if last.tick == tick => last.us_per_quarter = us_per_quarter,
        _ => tempos.push(TempoChange {
            tick,
            us_per_quarter,
        }),
    }
}

/// Converts ticks to seconds through tempo changes, for ticks visited in order.
struct TempoCursor {
    clock: Clock,
    /// Tick and time of the last tempo change.
    anchor_tick: u64,
    anchor_seconds: f64,
    seconds_per_tick: f64,
}

impl TempoCursor {
    fn new(clock: Clock, tick: u64, seconds: f64) -> Self {
        let seconds_per_tick = match clock {
            Clock::Metrical(tpb) => DEFAULT_TEMPO_US_PER_BEAT as f64 * 1e-6 / tpb,
            Clock::Timecode(per_second) => 1.0 / per_second,
        };
        Self {
            clock,
            anchor_tick: tick,
            anchor_seconds: seconds,
            seconds_per_tick,
        }
    }

    fn seconds_at(&self, tick: u64) -> f64 {
        self.anchor_seconds + (tick - self.anchor_tick) as f64 * self.seconds_per_tick
    }

    /// Sets the tempo from `tick` on; false where it does not apply (SMPTE time ignores
    /// tempo, and a zero tempo is meaningless).
    fn set_tempo(&mut self, tick: u64, us_per_beat: u32) -> bool {
        if let (Clock::Metrical(tpb), true) = (self.clock, us_per_beat > 0) {
            self.anchor_seconds = self.seconds_at(tick);
            self.anchor_tick = tick;
            self.seconds_per_tick = us_per_beat as f64 * 1e-6 / tpb;
            true
        } else {
            false
        }
    }
}

fn convert(message: MidiMessage) -> Option<ChannelMessage> {
    Some(match message {
        MidiMessage::NoteOn { key, vel } if vel.as_int() == 0 => ChannelMessage::NoteOff {
            key: key.as_int(),
            velocity: 0,
        },
        MidiMessage::NoteOn { key, vel } => ChannelMessage::NoteOn {
            key: key.as_int(),
            velocity: vel.as_int(),
        },
        MidiMessage::NoteOff { key, vel } => ChannelMessage::NoteOff {
            key: key.as_int(),
            velocity: vel.as_int(),
        },
        MidiMessage::Aftertouch { key, vel } => ChannelMessage::KeyPressure {
            key: key.as_int(),
            pressure: vel.as_int(),
        },
        MidiMessage::Controller { controller, value } => ChannelMessage::Controller {
            controller: controller.as_int(),
            value: value.as_int(),
        },
        MidiMessage::ProgramChange { program } => ChannelMessage::ProgramChange {
            program: program.as_int(),
        },
        MidiMessage::ChannelAftertouch { vel } => ChannelMessage::ChannelPressure {
            pressure: vel.as_int(),
        },
        MidiMessage::PitchBend { bend } => ChannelMessage::PitchBend {
            bend: bend.as_int(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u4, u7, u15, u24, u28};
    use midly::{Header, TrackEvent};

    fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
        TrackEvent {
            delta: u28::new(delta),
            kind,
        }
    }

    fn note_on(key: u8) -> TrackEventKind<'static> {
        TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(100),
            },
        }
    }

    fn tempo(us: u32) -> TrackEventKind<'static> {
        TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us)))
    }

    #[test]
    fn tempo_changes_in_another_track_move_later_events() {
        // 480 ticks per beat; 120 bpm, then 60 bpm from beat 1.
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![
                vec![ev(0, tempo(500_000)), ev(480, tempo(1_000_000))],
                vec![
                    ev(0, note_on(60)),
                    ev(480, note_on(62)),
                    ev(480, note_on(64)),
                ],
            ],
        };
        let song = song_from_smf(&smf).unwrap();
        let times: Vec<f64> = song.events.iter().map(|e| e.seconds).collect();
        assert_eq!(times, vec![0.0, 0.5, 1.5]);
        assert_eq!(song.duration, 1.5);
    }

    #[test]
    fn sequential_tracks_play_one_after_another() {
        let smf = Smf {
            header: Header::new(Format::Sequential, Timing::Metrical(u15::new(100))),
            tracks: vec![
                vec![ev(0, note_on(60)), ev(200, note_on(61))],
                vec![ev(0, tempo(250_000)), ev(100, note_on(62))],
            ],
        };
        let song = song_from_smf(&smf).unwrap();
        let times: Vec<f64> = song.events.iter().map(|e| e.seconds).collect();
        assert_eq!(times, vec![0.0, 1.0, 1.25]);
    }

    #[test]
    fn a_second_header_with_impossible_smpte_timing_is_an_error() {
        // A valid header and track, then a header chunk whose timing is -128 fps (found by
        // fuzzing: midly parses headers among the tracks too, and negating -128 overflows).
        let mut bytes = b"MThd\0\0\0\x06\0\x01\0\x01\0\x60".to_vec();
        bytes.extend_from_slice(b"MTrk\0\0\0\x04\0\xff\x2f\0");
        bytes.extend_from_slice(b"MThd\0\0\0\x06\0\x01\0\x01\x80\x00");
        let e = parse_midi(&bytes).unwrap_err().to_string();
        assert!(e.contains("SMPTE"), "{e}");
        assert!(crate::music::seed::Seed::parse(&bytes).is_err());
    }

    #[test]
    fn smpte_timing_ignores_tempo() {
        // 25 fps × 40 subframes = 1000 ticks per second.
        let smf = Smf {
            header: Header::new(Format::SingleTrack, Timing::Timecode(midly::Fps::Fps25, 40)),
            tracks: vec![vec![
                ev(0, tempo(1_000_000)),
                ev(500, note_on(60)),
                ev(1500, note_on(61)),
            ]],
        };
        let song = song_from_smf(&smf).unwrap();
        let times: Vec<f64> = song.events.iter().map(|e| e.seconds).collect();
        assert_eq!(times, vec![0.5, 2.0]);
    }

    #[test]
    fn note_on_with_zero_velocity_is_note_off_and_bend_round_trips() {
        assert_eq!(
            convert(MidiMessage::NoteOn {
                key: u7::new(60),
                vel: u7::new(0)
            }),
            Some(ChannelMessage::NoteOff {
                key: 60,
                velocity: 0
            })
        );
        let raw = ChannelMessage::PitchBend { bend: -8192 }.to_raw();
        assert_eq!(raw, (0xE0, 0, 0));
        let raw = ChannelMessage::PitchBend { bend: 0 }.to_raw();
        assert_eq!(raw, (0xE0, 0, 0x40));
    }

    #[test]
    fn truncated_track_is_an_error() {
        let smf = Smf {
            header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(96))),
            tracks: vec![vec![ev(0, note_on(60)), ev(96, note_on(62))]],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        assert!(parse_midi(&bytes).is_ok());
        for cut in [3, bytes.len() - 20, bytes.len() - 16] {
            let err = parse_midi(&bytes[..bytes.len() - cut]).unwrap_err();
            assert!(err.to_string().contains("truncated"), "{cut}: {err}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            parse_midi(b"RIFF not midi"),
            Err(MidiFileError::Invalid { .. })
        ));
    }
}

//! Music: live MIDI ports ([`live`]) and MIDI files read as timed events ([`midi_file`]).

pub mod live;
pub mod midi_file;

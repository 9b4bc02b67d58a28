//! Music: the music models ([`model`], [`events`]), continuation of seeds ([`continuation`])
//! and its musical checks ([`judge`]), live MIDI ports ([`live`]), call and response with a DAW
//! in time ([`jam`]) and MIDI files read as timed events ([`midi_file`]).

pub mod continuation;
pub mod events;
pub mod jam;
pub mod judge;
pub mod live;
pub mod midi_file;
pub mod model;
pub mod plot;
pub mod sample;
pub mod seed;

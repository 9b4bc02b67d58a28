//! Music continuation: the music model ([`model`]) and live MIDI ports ([`live`]).

pub mod continuation;
pub mod live;
pub mod model;
pub mod plot;
pub mod sample;
pub mod seed;

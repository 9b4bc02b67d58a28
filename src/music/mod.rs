//! Music continuation: the music model ([`model`]) and live MIDI ports ([`live`]).

pub mod live;
pub mod model;

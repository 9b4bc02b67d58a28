//! Music continuation. So far: live MIDI ports ([`live`]).

pub mod live;

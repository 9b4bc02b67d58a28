//! Reprise: a real-time daemon that transcribes speech and continues music.
//!
//! The crate is laid out by concern:
//! - [`audio`]: the audio edge (capture, playback, resampling, WAV files);
//! - [`daemon`]: `reprise serve`: speech sessions over WebSocket (Vosk-compatible), music over
//!   HTTP, live sources, health and metrics;
//! - [`music`]: music continuation: the model, seeds and MIDI files, live MIDI ports and
//!   `jam` (call and response with a DAW over MIDI, in time);
//! - [`speech`]: streaming speech recognition (front end, acoustic model, CTC decoding, endpoints);
//! - [`render`]: offline rendering of MIDI to WAV (SoundFont or built-in synthesizer);
//! - [`rt`]: helpers for real-time threads (denormal guard, real-time priority, the process
//!   clock).
//!
//! Real-time callbacks only move data: they convert, copy into wait-free SPSC
//! rings and count what did not fit. Everything else runs on ordinary threads.

pub mod audio;
pub mod daemon;
pub mod engine;
pub mod models;
pub mod music;
mod names;
pub mod render;
pub mod rt;
pub mod speech;

// Unit tests may check that a path does not allocate (`assert_no_alloc` counts what is
// allocated inside its scope and passes everything else through).
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

//! Streaming speech recognition: samples → log-mel steps → character log-probabilities →
//! CTC decoding → partial and final results.
//!
//! - [`features`]: the log-mel front end (equal to the training code's);
//! - [`acoustic`]: the `speech-ctc` model through the engine;
//! - [`ctc`]: greedy and prefix-beam decoding with a word language model and hot words;
//! - [`endpoint`]: speech/silence detection and the end-of-utterance rules;
//! - [`recognizer`]: all of it for one stream, [`Recognizer::accept`] in, events out;
//! - [`live`]: the one microphone → recognizer loop (`reprise listen`, the daemon);
//! - [`output`]: text, JSON lines, SRT and WebVTT;
//! - [`score`]: word error counting for evaluation.

pub mod acoustic;
pub mod ctc;
pub mod endpoint;
mod error;
pub mod features;
pub mod live;
pub mod lm;
pub mod output;
pub mod recognizer;
pub mod score;

pub use acoustic::{AcousticModel, SpeechConfig};
pub use error::SpeechError;
pub use recognizer::{Event, Recognizer, RecognizerOptions, Transcriber, Utterance, Word};

//! Errors of the speech recognizer.

use std::path::PathBuf;

use crate::engine::{EngineError, ModelError};

/// Why a speech model, language model or option could not be used. Retrying cannot help: the
/// files or options must be fixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpeechError {
    /// The model files are broken (see [`ModelError`]).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The files are a valid model but not a speech model this build understands.
    #[error("{path}: not a usable speech model: {message}")]
    NotSpeech { path: PathBuf, message: String },
    /// A language-model file could not be read or is not valid ARPA.
    #[error("{path}:{line}: {message}")]
    LanguageModel {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A decoder or recognizer option is out of range (e.g. a hot word with letters the model
    /// cannot write).
    #[error("invalid option: {0}")]
    Option(String),
    /// An inference call failed (a bug: shapes are fixed at load time).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

use std::path::PathBuf;

use crate::audio::AudioError;

/// Errors of offline rendering. None of them is helped by retrying as is: each names
/// the file or parameter to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The SoundFont file cannot be read (missing, unreadable).
    #[error("{}: cannot read SoundFont: {source}", path.display())]
    SoundFontIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable SF2 SoundFont.
    #[error("{}: not a valid SoundFont (SF2): {detail}", path.display())]
    InvalidSoundFont { path: PathBuf, detail: String },
    /// The synthesizer refused its settings.
    #[error("cannot start the synthesizer: {0}")]
    Synthesizer(String),
    /// A parameter is out of range.
    #[error("invalid render parameter: {0}")]
    InvalidParameter(String),
    /// A rendering thread stopped before the end.
    #[error("rendering failed: {0}")]
    Worker(String),
    /// Writing the output failed.
    #[error(transparent)]
    Output(#[from] AudioError),
    /// The caller's sink stopped the rendering before the end.
    #[error("rendering was stopped")]
    Stopped,
}

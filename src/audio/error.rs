use std::path::PathBuf;

/// Errors of the audio edge.
///
/// Device errors say whether the user can fix them (a name, a configuration); a
/// lost device or a stalled stream is not retried automatically.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The requested audio host (driver API) is not compiled in or cannot start.
    #[error("audio host {host} is unavailable: {detail}")]
    HostUnavailable { host: String, detail: String },
    /// The host has no default device in this direction.
    #[error("no default audio {direction} device (is a sound server or card present?)")]
    NoDevice { direction: &'static str },
    /// No device matches the requested name.
    #[error(
        "no audio {direction} device named {name:?}; available: {}",
        crate::names::list_or_none(available)
    )]
    UnknownDevice {
        name: String,
        direction: &'static str,
        available: Vec<String>,
    },
    /// The device cannot run the requested configuration.
    #[error("device {device:?} does not support {requested}; it supports: {supported}")]
    UnsupportedConfig {
        device: String,
        requested: String,
        supported: String,
    },
    /// Building or starting a stream failed.
    #[error("cannot open audio stream on {device:?}: {detail}")]
    Stream { device: String, detail: String },
    /// The device reported an error or went away while streaming.
    #[error("audio device {device:?} failed mid-stream: {detail}")]
    DeviceLost { device: String, detail: String },
    /// No audio arrived for too long.
    #[error("audio device {device:?} delivered no audio for {seconds:.1} s")]
    Stalled { device: String, seconds: f32 },
    /// The resampler could not be built for these rates.
    #[error("cannot resample {from} Hz to {to} Hz: {detail}")]
    Resampler { from: u32, to: u32, detail: String },
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file, or its header is damaged.
    #[error("{}: not a readable WAV file: {detail}", path.display())]
    NotWav { path: PathBuf, detail: String },
    /// The WAV header promises more audio than the file holds.
    #[error("{}: truncated WAV file: header promises {expected} samples, file holds {got}", path.display())]
    TruncatedWav {
        path: PathBuf,
        expected: u64,
        got: u64,
    },
    /// A valid WAV file in an encoding Reprise does not read.
    #[error("{}: unsupported WAV encoding: {detail}", path.display())]
    UnsupportedWav { path: PathBuf, detail: String },
    /// A compressed audio file (FLAC, MP3, Ogg Vorbis) could not be opened or decoded.
    #[error("{}: not a readable audio file: {detail}", path.display())]
    Decode { path: PathBuf, detail: String },
    /// A parameter is out of range.
    #[error("invalid audio parameter: {0}")]
    InvalidParameter(String),
}

//! The daemon's configuration: a TOML file (every key optional), then command-line flags on
//! top. Unknown keys are errors that name the key; out-of-range values are errors that name
//! the key and the range.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::Format;
use crate::music::jam::{CcMap, JamOptions};
use crate::music::live::PortSpec;
use crate::music::sample::Sampling;
use crate::speech::ctc::HotWord;

/// Why a configuration could not be used. Fix the file or the flag; retrying cannot help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type (the
    /// message names the key and its line).
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("{key}: {message}")]
    Value { key: &'static str, message: String },
}

/// Everything `reprise serve` can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on (loopback by default).
    pub listen: SocketAddr,
    /// Clients must send `Authorization: Bearer TOKEN` (or `?token=TOKEN`) when set.
    pub auth_token: Option<String>,
    /// A file holding the token (its first line), instead of `auth_token`.
    pub auth_token_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace.
    pub log_level: String,
    /// Speech recognition.
    pub speech: SpeechSection,
    /// Music continuation and rendering.
    pub music: MusicSection,
    /// Limits on clients.
    pub limits: Limits,
    /// The inference threads.
    pub engine: EngineSection,
    /// Live sources whose results are broadcast to subscribed clients.
    pub live: LiveSection,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2700)),
            auth_token: None,
            auth_token_file: None,
            log_level: "info".into(),
            speech: SpeechSection::default(),
            music: MusicSection::default(),
            limits: Limits::default(),
            engine: EngineSection::default(),
            live: LiveSection::default(),
        }
    }
}

/// `[speech]`: the model and decoder options of every speech session.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechSection {
    /// Serve speech at all.
    pub enabled: bool,
    /// Model folder; the bundled `speech-en` when absent.
    pub model: Option<PathBuf>,
    /// ARPA language model; the model folder's `lm.arpa[.gz]` when absent.
    pub lm: Option<PathBuf>,
    /// Decode without a language model.
    pub no_lm: bool,
    /// Beam width (1 decodes greedily).
    pub beam: usize,
    /// Weight of the language model.
    pub lm_weight: f32,
    /// Score added per word.
    pub word_bonus: f32,
    /// Weight format to run the model in: f32, bf16 or int8 (the model's own when absent).
    pub weights: Option<String>,
    /// Seconds of silence that end an utterance.
    pub endpoint_silence: f32,
    /// Longest utterance in seconds.
    pub max_utterance: f32,
    /// Hot words of every session, `WORD` or `WORD:BOOST`.
    pub hot_words: Vec<String>,
    /// Boost (nats) given to the words of a client's `phrase_list`.
    pub phrase_boost: f32,
    /// Sample rate of a client's audio when its config does not say.
    pub default_sample_rate: u32,
}

impl Default for SpeechSection {
    fn default() -> Self {
        SpeechSection {
            enabled: true,
            model: None,
            lm: None,
            no_lm: false,
            beam: 8,
            lm_weight: 0.5,
            word_bonus: 1.0,
            weights: None,
            endpoint_silence: 0.8,
            max_utterance: 20.0,
            hot_words: Vec::new(),
            phrase_boost: 5.0,
            default_sample_rate: 16_000,
        }
    }
}

/// `[music]`: continuation and rendering over HTTP.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MusicSection {
    /// Serve music at all.
    pub enabled: bool,
    /// Model folder; the bundled `music-default` when absent.
    pub model: Option<PathBuf>,
    /// Weight format to run the music LSTM in (the model's own when absent).
    pub format: Option<String>,
    /// SoundFont for rendering; the built-in synthesizer when absent.
    pub soundfont: Option<PathBuf>,
}

impl Default for MusicSection {
    fn default() -> Self {
        MusicSection {
            enabled: true,
            model: None,
            format: None,
            soundfont: None,
        }
    }
}

/// `[limits]`: what one client may ask for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Speech sessions open at once; more are refused with HTTP 503.
    pub max_sessions: usize,
    /// Largest WebSocket message, and largest HTTP body, in bytes.
    pub max_message_bytes: usize,
    /// A session that sends nothing for this many seconds is closed.
    pub idle_seconds: f64,
    /// A client that does not take a reply within this many seconds is dropped.
    pub send_timeout_seconds: f64,
    /// Feature steps queued per session for the inference thread (about 30 ms each); a
    /// session whose queue is full waits (back-pressure), it is never buffered further.
    pub queue_steps: usize,
    /// Music requests (continue, render) running at once; more wait their turn.
    pub music_jobs: usize,
    /// Most bars one continuation may ask for.
    pub max_bars: u32,
    /// Most seconds of audio one render may produce.
    pub max_render_seconds: f64,
    /// A music job (continue or render) still running after this many seconds is stopped
    /// and answered with HTTP 503; one whose client went away is stopped at once.
    pub music_seconds: f64,
    /// TCP connections open at once; more are closed as soon as they are accepted (0:
    /// `max_sessions` + 64, room for health, metrics and music beside full sessions).
    pub max_connections: usize,
    /// A connection whose request headers have not all arrived this many seconds after it
    /// opened (or after its previous request) is closed.
    pub header_seconds: f64,
    /// On SIGTERM or SIGINT, seconds given to sessions to flush their final results.
    pub shutdown_seconds: f64,
}

impl Limits {
    /// TCP connections allowed at once (`max_connections`, or its automatic value).
    pub fn connections(&self) -> usize {
        match self.max_connections {
            0 => self.max_sessions.saturating_add(64),
            n => n,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 256,
            max_message_bytes: 1 << 20,
            idle_seconds: 60.0,
            send_timeout_seconds: 10.0,
            queue_steps: 32,
            music_jobs: 1,
            max_bars: 64,
            max_render_seconds: 900.0,
            music_seconds: 120.0,
            max_connections: 0,
            header_seconds: 10.0,
            shutdown_seconds: 10.0,
        }
    }
}

/// `[engine]`: the inference threads that step all sessions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Inference threads, each stepping its sessions as one batch (0: one per core).
    pub threads: usize,
    /// Most sessions per batch.
    pub max_batch: usize,
    /// Threads of the network runtime (0: one per core).
    pub io_threads: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            threads: 0,
            max_batch: 64,
            io_threads: 0,
        }
    }
}

/// `[live]`: sources that run for the whole life of the daemon.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSection {
    /// `[live.microphone]`: transcribe an input device and broadcast its results.
    pub microphone: Option<MicrophoneSection>,
    /// `[live.jam]`: call and response with a DAW over MIDI ports, as `reprise jam` does.
    pub jam: Option<JamSection>,
}

/// `[live.jam]`: the options of `reprise jam` (same names, same defaults).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JamSection {
    /// Port to listen to (the DAW's MIDI output); a virtual port "reprise in" when absent.
    pub input: Option<String>,
    /// Port to answer on (the DAW's MIDI input); a virtual port "reprise out" when absent.
    pub output: Option<String>,
    /// Music model folder; `music.model` (else the bundled `music-default`) when absent.
    pub model: Option<PathBuf>,
    /// Tempo when the DAW sends no MIDI clock.
    pub bpm: f64,
    /// Response length in bars.
    pub bars: u32,
    /// Quarter notes per bar.
    pub beats_per_bar: u8,
    /// Bars of silence that end a call.
    pub call_end_bars: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus threshold.
    pub top_p: f32,
    /// auto, off, or e.g. "C:major".
    pub scale: String,
    /// Most notes sounding at once.
    pub max_voices: Option<usize>,
    /// Output MIDI channel, 1 to 16.
    pub channel: u8,
    /// Shift of every output time in milliseconds (negative: earlier).
    pub offset_ms: f64,
    /// Repeat the last response until a new call.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Listen for the next call while answering.
    pub overlap: bool,
    /// No response note-ons while the user holds notes.
    pub mute_while_playing: bool,
    /// Random seed of the first response.
    pub seed: u64,
}

impl Default for JamSection {
    fn default() -> Self {
        let o = JamOptions::default();
        JamSection {
            input: None,
            output: None,
            model: None,
            bpm: o.bpm,
            bars: o.bars,
            beats_per_bar: o.beats_per_bar,
            call_end_bars: o.call_end_bars,
            temperature: o.sampling.temperature,
            top_p: o.sampling.top_p,
            scale: "off".into(),
            max_voices: o.max_voices,
            channel: o.channel + 1,
            offset_ms: o.offset_ms,
            looping: o.looping,
            overlap: o.overlap,
            mute_while_playing: o.mute_while_playing,
            seed: o.seed,
        }
    }
}

impl JamSection {
    /// The jam's options, checked.
    pub fn options(&self) -> Result<JamOptions, ConfigError> {
        let bad = |message: String| ConfigError::Value {
            key: "live.jam",
            message,
        };
        if !(1..=16).contains(&self.channel) {
            return Err(bad(format!(
                "channel must be 1 to 16 (got {})",
                self.channel
            )));
        }
        let opts = JamOptions {
            input: PortSpec::named_or_virtual(self.input.as_deref(), "reprise in"),
            output: PortSpec::named_or_virtual(self.output.as_deref(), "reprise out"),
            bpm: self.bpm,
            bars: self.bars,
            beats_per_bar: self.beats_per_bar,
            call_end_bars: self.call_end_bars,
            sampling: Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
            },
            scale: self.scale.parse().map_err(bad)?,
            max_voices: self.max_voices,
            fit_voices: true,
            channel: self.channel - 1,
            offset_ms: self.offset_ms,
            looping: self.looping,
            overlap: self.overlap,
            mute_while_playing: self.mute_while_playing,
            cc: CcMap::default(),
            seed: self.seed,
        };
        opts.validate().map_err(|e| bad(e.to_string()))?;
        Ok(opts)
    }
}

/// `[live.microphone]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MicrophoneSection {
    /// Input device name (exact or a unique part); the default input when absent.
    pub device: Option<String>,
    /// Audio host: default, alsa or jack.
    pub host: Option<String>,
}

fn check(ok: bool, key: &'static str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Value {
            key,
            message: message.into(),
        })
    }
}

impl ServeConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ServeConfig::parse(&text, path)
    }

    /// Parses TOML text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<ServeConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Checks every range; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.speech;
        check(
            (1..=256).contains(&s.beam),
            "speech.beam",
            "must be 1 to 256",
        )?;
        check(
            s.lm_weight.is_finite() && s.word_bonus.is_finite() && s.phrase_boost.is_finite(),
            "speech.lm_weight, speech.word_bonus, speech.phrase_boost",
            "must be numbers",
        )?;
        check(
            s.endpoint_silence > 0.0 && s.endpoint_silence <= s.max_utterance,
            "speech.endpoint_silence",
            "must be positive and at most speech.max_utterance",
        )?;
        check(
            s.max_utterance > 0.0 && s.max_utterance <= 300.0,
            "speech.max_utterance",
            "must be 0 to 300 seconds",
        )?;
        check(
            (4_000..=192_000).contains(&s.default_sample_rate),
            "speech.default_sample_rate",
            "must be 4000 to 192000 Hz",
        )?;
        self.speech_format()?;
        self.hot_words()?;
        self.music_format()?;
        if let Some(jam) = &self.live.jam {
            jam.options()?;
        }
        let l = &self.limits;
        check(
            l.max_sessions >= 1,
            "limits.max_sessions",
            "must be at least 1",
        )?;
        check(
            (1024..=(256 << 20)).contains(&l.max_message_bytes),
            "limits.max_message_bytes",
            "must be 1 KiB to 256 MiB",
        )?;
        check(
            l.idle_seconds > 0.0 && l.idle_seconds <= 86_400.0,
            "limits.idle_seconds",
            "must be 0 to 86400 seconds",
        )?;
        check(
            l.send_timeout_seconds > 0.0 && l.send_timeout_seconds <= 3600.0,
            "limits.send_timeout_seconds",
            "must be 0 to 3600 seconds",
        )?;
        check(
            (4..=100_000).contains(&l.queue_steps),
            "limits.queue_steps",
            "must be 4 to 100000",
        )?;
        check(
            (1..=64).contains(&l.music_jobs),
            "limits.music_jobs",
            "must be 1 to 64",
        )?;
        check(
            (1..=1000).contains(&l.max_bars),
            "limits.max_bars",
            "must be 1 to 1000",
        )?;
        check(
            l.max_render_seconds > 0.0 && l.max_render_seconds <= 36_000.0,
            "limits.max_render_seconds",
            "must be 0 to 36000 seconds",
        )?;
        check(
            l.music_seconds > 0.0 && l.music_seconds <= 86_400.0,
            "limits.music_seconds",
            "must be 0 to 86400 seconds",
        )?;
        check(
            l.max_connections <= 1 << 20,
            "limits.max_connections",
            "must be at most 1048576",
        )?;
        check(
            l.header_seconds > 0.0 && l.header_seconds <= 3600.0,
            "limits.header_seconds",
            "must be 0 to 3600 seconds",
        )?;
        check(
            (0.0..=3600.0).contains(&l.shutdown_seconds),
            "limits.shutdown_seconds",
            "must be 0 to 3600 seconds",
        )?;
        check(
            self.engine.threads <= 1024 && self.engine.io_threads <= 1024,
            "engine.threads",
            "must be at most 1024",
        )?;
        check(
            (1..=1024).contains(&self.engine.max_batch),
            "engine.max_batch",
            "must be 1 to 1024",
        )?;
        check(
            matches!(
                self.log_level.as_str(),
                "error" | "warn" | "info" | "debug" | "trace"
            ),
            "log_level",
            "must be error, warn, info, debug or trace",
        )?;
        check(
            !(self.auth_token.is_some() && self.auth_token_file.is_some()),
            "auth_token",
            "give auth_token or auth_token_file, not both",
        )?;
        check(
            self.auth_token
                .as_ref()
                .is_none_or(|t| !t.trim().is_empty()),
            "auth_token",
            "must not be empty",
        )?;
        Ok(())
    }

    /// `speech.weights` parsed.
    pub fn speech_format(&self) -> Result<Option<Format>, ConfigError> {
        parse_format(self.speech.weights.as_deref(), "speech.weights")
    }

    /// `music.format` parsed.
    pub fn music_format(&self) -> Result<Option<Format>, ConfigError> {
        parse_format(self.music.format.as_deref(), "music.format")
    }

    /// `speech.hot_words` parsed.
    pub fn hot_words(&self) -> Result<Vec<HotWord>, ConfigError> {
        self.speech
            .hot_words
            .iter()
            .map(|h| {
                h.parse().map_err(|message| ConfigError::Value {
                    key: "speech.hot_words",
                    message,
                })
            })
            .collect()
    }

    /// The bearer token, read from `auth_token_file` when that is given.
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        match (&self.auth_token, &self.auth_token_file) {
            (Some(t), _) => Ok(Some(t.trim().to_string())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let token = text.lines().next().unwrap_or("").trim().to_string();
                check(
                    !token.is_empty(),
                    "auth_token_file",
                    "the file's first line is empty",
                )?;
                Ok(Some(token))
            }
            (None, None) => Ok(None),
        }
    }
}

fn parse_format(value: Option<&str>, key: &'static str) -> Result<Option<Format>, ConfigError> {
    value
        .map(|v| {
            Format::parse(v).ok_or_else(|| ConfigError::Value {
                key,
                message: format!("{v:?} is not a weight format (f32, bf16 or int8)"),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        let c = ServeConfig::parse(text, Path::new("reprise.toml"))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:2700");
        assert_eq!(c.limits.max_sessions, 256);
        assert!(c.speech.enabled && c.music.enabled && c.live.microphone.is_none());
    }

    #[test]
    fn every_section_is_read() {
        let c = parse(
            r#"
            listen = "0.0.0.0:9000"
            auth_token = "s3cret"
            log_level = "debug"
            [speech]
            model = "m"
            beam = 4
            weights = "int8"
            hot_words = ["reprise:8", "jam"]
            [music]
            soundfont = "a.sf2"
            [limits]
            max_sessions = 20
            idle_seconds = 5
            [engine]
            threads = 2
            max_batch = 16
            [live.microphone]
            device = "default"
            [live.jam]
            input = "DAW out"
            bars = 4
            loop = true
            channel = 10
            scale = "C:major"
            "#,
        )
        .unwrap();
        let jam = c.live.jam.as_ref().unwrap().options().unwrap();
        assert_eq!(jam.input, PortSpec::Named("DAW out".into()));
        assert_eq!(jam.output, PortSpec::Virtual("reprise out".into()));
        assert_eq!((jam.bars, jam.channel, jam.looping), (4, 9, true));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.speech.beam, 4);
        assert_eq!(c.speech_format().unwrap(), Some(Format::Int8));
        assert_eq!(c.hot_words().unwrap().len(), 2);
        assert_eq!(c.limits.max_sessions, 20);
        assert_eq!(c.engine.max_batch, 16);
        assert_eq!(c.token().unwrap().as_deref(), Some("s3cret"));
        assert_eq!(
            c.live.microphone.unwrap().device.as_deref(),
            Some("default")
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("lisen = \"1.2.3.4:5\"", "lisen"),
            ("[speech]\nbeem = 3", "beem"),
            ("[limits]\nmax_session = 3", "max_session"),
            ("[live.microphone]\ndevcie = \"x\"", "devcie"),
            ("[live.jam]\nbpn = 90", "bpn"),
            ("[nonsense]\na = 1", "nonsense"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("reprise.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[speech]\nbeam = 0", "speech.beam"),
            ("[speech]\nweights = \"f16\"", "speech.weights"),
            ("[limits]\nmax_sessions = 0", "limits.max_sessions"),
            (
                "[limits]\nmax_message_bytes = 10",
                "limits.max_message_bytes",
            ),
            ("[engine]\nmax_batch = 0", "engine.max_batch"),
            ("log_level = \"loud\"", "log_level"),
            ("[speech]\nhot_words = [\"x:y\"]", "speech.hot_words"),
            ("[live.jam]\nbars = 0", "live.jam"),
            ("[live.jam]\nchannel = 17", "live.jam"),
            ("[live.jam]\nscale = \"H:minor\"", "live.jam"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = parse("listen = \"nowhere\"").unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        let e = parse("[limits]\nmax_sessions = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_sessions"), "{e}");
    }
}

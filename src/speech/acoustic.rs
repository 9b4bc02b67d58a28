//! The acoustic model: a `speech-ctc` model (layers `lstm`, `linear`, `log_softmax`) that turns
//! front-end steps into per-step log-probabilities over the CTC vocabulary (index `blank` is the
//! blank). See `docs/model-format.md` for the `speech` config section.

use std::path::Path;

use serde::Deserialize;

use super::SpeechError;
use super::features::FrontEndConfig;
use crate::engine::kernels::Isa;
use crate::engine::layers::{Linear, log_softmax_in_place};
use crate::engine::weights::LayerConfig;
use crate::engine::{EngineError, Format, LstmStack, LstmState, Model, StackOptions};

/// The `speech` section of a `speech-ctc` config, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeechConfig {
    /// The front end the model was trained with.
    pub front_end: FrontEndConfig,
    /// Output symbols; the blank's entry is a placeholder.
    pub vocabulary: Vec<String>,
    /// Index of the CTC blank.
    pub blank: usize,
}

impl SpeechConfig {
    /// Index of the word separator (a single space), if the vocabulary has one.
    pub fn space(&self) -> Option<usize> {
        self.vocabulary
            .iter()
            .enumerate()
            .position(|(i, s)| i != self.blank && s == " ")
    }
}

#[derive(Deserialize)]
struct RawSpeech {
    sample_rate: u32,
    #[serde(default)]
    pre_emphasis: f32,
    window: String,
    win_length: usize,
    hop_length: usize,
    n_fft: usize,
    #[serde(default = "default_padding")]
    padding: String,
    spectrum: String,
    n_mels: usize,
    mel_scale: String,
    fmin: f64,
    fmax: f64,
    mel_norm: String,
    log: String,
    log_floor: f64,
    feature_mean: Vec<f32>,
    feature_std: Vec<f32>,
    stack: usize,
    stride: usize,
    vocabulary: Vec<String>,
    blank: usize,
}

fn default_padding() -> String {
    "none".into()
}

/// Parses and checks the `speech` section.
pub fn parse_speech(value: &serde_json::Value) -> Result<SpeechConfig, String> {
    let raw = RawSpeech::deserialize(value).map_err(|e| format!("speech section: {e}"))?;
    for (field, value, supported) in [
        ("window", &raw.window, "hann-periodic"),
        ("padding", &raw.padding, "none"),
        ("spectrum", &raw.spectrum, "power"),
        ("mel_scale", &raw.mel_scale, "htk"),
        ("mel_norm", &raw.mel_norm, "none"),
        ("log", &raw.log, "ln"),
    ] {
        if value != supported {
            return Err(format!(
                "speech.{field} is {value:?}; this build supports {supported:?}"
            ));
        }
    }
    let front_end = FrontEndConfig {
        sample_rate: raw.sample_rate,
        pre_emphasis: raw.pre_emphasis,
        win_length: raw.win_length,
        hop_length: raw.hop_length,
        n_fft: raw.n_fft,
        n_mels: raw.n_mels,
        fmin: raw.fmin,
        fmax: raw.fmax,
        log_floor: raw.log_floor,
        feature_mean: raw.feature_mean,
        feature_std: raw.feature_std,
        stack: raw.stack,
        stride: raw.stride,
    };
    front_end.validate().map_err(|e| format!("speech: {e}"))?;
    if raw.vocabulary.len() < 2 || raw.blank >= raw.vocabulary.len() {
        return Err(format!(
            "speech.vocabulary needs at least two symbols and blank {} inside it",
            raw.blank
        ));
    }
    for (i, s) in raw.vocabulary.iter().enumerate() {
        if i != raw.blank && s.chars().count() != 1 {
            return Err(format!(
                "speech.vocabulary[{i}] is {s:?}; symbols must be single characters"
            ));
        }
    }
    Ok(SpeechConfig {
        front_end,
        vocabulary: raw.vocabulary,
        blank: raw.blank,
    })
}

/// A loaded acoustic model with its scratch space.
pub struct AcousticModel {
    /// The `speech` section.
    pub config: SpeechConfig,
    stack: LstmStack,
    out: Linear,
    hidden: Vec<f32>,
    parameters: usize,
}

/// The recurrent state of one stream.
pub struct AcousticState {
    lstm: LstmState,
}

impl AcousticState {
    /// A state of no layers, for tests that never step it.
    #[cfg(test)]
    pub(crate) fn empty() -> AcousticState {
        AcousticState {
            lstm: LstmState::empty(),
        }
    }

    /// Back to the start of a stream.
    pub fn reset(&mut self) {
        self.lstm.reset();
    }
}

impl std::borrow::Borrow<LstmState> for AcousticState {
    fn borrow(&self) -> &LstmState {
        &self.lstm
    }
}

impl std::borrow::BorrowMut<LstmState> for AcousticState {
    fn borrow_mut(&mut self) -> &mut LstmState {
        &mut self.lstm
    }
}

impl AcousticModel {
    /// Loads `dir` and runs it in `format` (the config's own weight format if `None`).
    pub fn load(
        dir: impl AsRef<Path>,
        format: Option<Format>,
    ) -> Result<AcousticModel, SpeechError> {
        AcousticModel::from_model(Model::load(dir.as_ref())?, format)
    }

    /// An acoustic model from an already loaded [`Model`].
    pub fn from_model(model: Model, format: Option<Format>) -> Result<AcousticModel, SpeechError> {
        let not_speech = |message: String| SpeechError::NotSpeech {
            path: model.dir.clone(),
            message,
        };
        if model.config.kind != "speech-ctc" {
            return Err(not_speech(format!(
                "kind is {:?}, expected \"speech-ctc\"",
                model.config.kind
            )));
        }
        let section = model
            .config
            .speech
            .as_ref()
            .ok_or_else(|| not_speech("the config has no speech section".into()))?;
        let config = parse_speech(section).map_err(not_speech)?;
        let (lstm, linear, outputs) = match &model.config.layers[..] {
            [
                LayerConfig::Lstm {
                    name: a,
                    input_size,
                    ..
                },
                LayerConfig::Linear {
                    name: b,
                    out_features,
                    ..
                },
                LayerConfig::LogSoftmax { .. },
            ] => {
                if *input_size != config.front_end.step_size() {
                    return Err(not_speech(format!(
                        "the LSTM takes {input_size} inputs but the front end gives {} per step",
                        config.front_end.step_size()
                    )));
                }
                (a.clone(), b.clone(), *out_features)
            }
            _ => {
                return Err(not_speech(
                    "the layers must be lstm, linear, log_softmax".into(),
                ));
            }
        };
        if outputs != config.vocabulary.len() {
            return Err(not_speech(format!(
                "the output layer has {outputs} units but the vocabulary {} symbols",
                config.vocabulary.len()
            )));
        }
        let format = format.unwrap_or(model.config.weight_format);
        let stack = LstmStack::from_model(&model, &lstm, StackOptions::new(format, 1))
            .ok_or_else(|| not_speech("no lstm layer".into()))?;
        let out = Linear::from_model(&model, &linear, format, Isa::detect(), 1)
            .ok_or_else(|| not_speech("no linear layer".into()))?;
        Ok(AcousticModel {
            hidden: vec![0.0; stack.hidden_size()],
            parameters: model.parameter_count(),
            config,
            stack,
            out,
        })
    }

    /// Another model over the same weights (shared, not copied) that steps up to `max_batch`
    /// streams at once with [`AcousticModel::step_batch_into`]. Only its scratch space is new,
    /// so any number of recognizers and inference threads can run one model held in memory
    /// once.
    pub fn share(&self, max_batch: usize) -> AcousticModel {
        let max_batch = max_batch.max(1);
        AcousticModel {
            config: self.config.clone(),
            stack: self.stack.share(max_batch),
            out: self.out.share(max_batch),
            hidden: vec![0.0; max_batch * self.stack.hidden_size()],
            parameters: self.parameters,
        }
    }

    /// Most streams per [`AcousticModel::step_batch_into`] call.
    pub fn max_batch(&self) -> usize {
        self.stack.max_batch()
    }

    /// Values per step the model takes (the front end's step size).
    pub fn step_size(&self) -> usize {
        self.stack.input_size()
    }

    /// Bytes of weights (shared between all copies made by [`AcousticModel::share`]).
    pub fn weight_bytes(&self) -> usize {
        self.stack.weight_bytes()
    }

    /// A fresh stream state.
    pub fn new_state(&self) -> AcousticState {
        AcousticState {
            lstm: self.stack.new_state(),
        }
    }

    /// Symbols per step (the vocabulary size).
    pub fn outputs(&self) -> usize {
        self.config.vocabulary.len()
    }

    /// The run-time weight format.
    pub fn format(&self) -> Format {
        self.stack.format()
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.parameters
    }

    /// Advances a stream by one step: `step` holds the front end's values, `log_probs`
    /// receives the log-probability of every symbol. Does not allocate.
    pub fn step_into(
        &mut self,
        state: &mut AcousticState,
        step: &[f32],
        log_probs: &mut [f32],
    ) -> Result<(), SpeechError> {
        self.step_batch_into(std::slice::from_mut(state), step, log_probs)
    }

    /// Advances `states.len()` streams (at most [`AcousticModel::max_batch`]) by one step each
    /// in one pass over the weights: `steps` holds one step per stream, `log_probs` receives
    /// one row of log-probabilities per stream. The rows are the same as stepping each stream
    /// alone. Does not allocate.
    pub fn step_batch_into(
        &mut self,
        states: &mut [AcousticState],
        steps: &[f32],
        log_probs: &mut [f32],
    ) -> Result<(), SpeechError> {
        if states.len() > self.max_batch() {
            return Err(EngineError::TooMany {
                what: "streams per step",
                max: self.max_batch(),
                actual: states.len(),
            }
            .into());
        }
        let hidden = &mut self.hidden[..states.len() * self.stack.hidden_size()];
        self.stack.step_into(states, steps, hidden)?;
        self.out.forward_into(hidden, log_probs)?;
        log_softmax_in_place(log_probs, self.config.vocabulary.len())?;
        Ok(())
    }
}

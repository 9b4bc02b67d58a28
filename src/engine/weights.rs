//! Model files: a JSON config plus safetensors weights, validated against each other.
//!
//! See `docs/model-format.md` for the layout. [`Model::load`] reads `config.json` and
//! `model.safetensors` from a folder, checks that every tensor the config's layers need is
//! present with the right shape and a supported dtype (F32 or BF16), that nothing else is in the
//! file, and keeps the tensors as f32 for the layers to pack into their run-time format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::kernels::Format;

/// Why a model could not be loaded. Retrying cannot help: the files must be fixed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or does not follow the format.
    #[error("{path}: invalid model config: {message}")]
    Config { path: PathBuf, message: String },
    /// The safetensors file is truncated or malformed.
    #[error("{path}: not a valid safetensors file: {message}")]
    Weights { path: PathBuf, message: String },
    /// A tensor the config needs is not in the weights file.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    /// A tensor has a shape other than the config implies.
    #[error("{path}: tensor `{name}` has shape {actual:?}, the config needs {expected:?}")]
    WrongShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// A tensor is stored in a dtype the engine does not read.
    #[error("{path}: tensor `{name}` has dtype {dtype}, expected F32 or BF16")]
    WrongDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    /// The weights file holds a tensor no layer uses (a sign of a mismatched config).
    #[error("{path}: tensor `{name}` is not used by any layer of the config")]
    UnexpectedTensor { path: PathBuf, name: String },
    /// A tensor holds NaN or infinity.
    #[error("{path}: tensor `{name}` holds a non-finite value")]
    NonFinite { path: PathBuf, name: String },
}

/// One layer of the network, as written in `config.json`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    /// A stack of LSTM layers with PyTorch's semantics.
    Lstm {
        name: String,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
    },
    /// `y = W x + b`.
    Linear {
        name: String,
        in_features: usize,
        out_features: usize,
    },
    /// Layer normalisation with learned gain and bias.
    LayerNorm { name: String, size: usize, eps: f32 },
    /// `max(x, 0)`.
    Relu {
        #[serde(default)]
        name: Option<String>,
    },
    /// `x - log Σ exp x`.
    LogSoftmax {
        #[serde(default)]
        name: Option<String>,
    },
    /// Neural autoregressive distribution over a frame's binary variables.
    Nade {
        name: String,
        visible: usize,
        hidden: usize,
        cond_size: usize,
    },
}

impl LayerConfig {
    /// Input size, where the layer fixes one.
    pub fn input_size(&self) -> Option<usize> {
        match self {
            LayerConfig::Lstm { input_size, .. } => Some(*input_size),
            LayerConfig::Linear { in_features, .. } => Some(*in_features),
            LayerConfig::LayerNorm { size, .. } => Some(*size),
            LayerConfig::Nade { cond_size, .. } => Some(*cond_size),
            LayerConfig::Relu { .. } | LayerConfig::LogSoftmax { .. } => None,
        }
    }

    /// Output size for a given input size (`None` for the NADE layer, which outputs a frame).
    pub fn output_size(&self, input: usize) -> Option<usize> {
        match self {
            LayerConfig::Lstm { hidden_size, .. } => Some(*hidden_size),
            LayerConfig::Linear { out_features, .. } => Some(*out_features),
            LayerConfig::LayerNorm { size, .. } => Some(*size),
            LayerConfig::Relu { .. } | LayerConfig::LogSoftmax { .. } => Some(input),
            LayerConfig::Nade { .. } => None,
        }
    }

    /// The tensors this layer needs, with their shapes.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            LayerConfig::Lstm {
                name,
                input_size,
                hidden_size: h,
                num_layers,
            } => (0..*num_layers)
                .flat_map(|k| {
                    let inp = if k == 0 { *input_size } else { *h };
                    [
                        (format!("{name}.weight_ih_l{k}"), vec![4 * h, inp]),
                        (format!("{name}.weight_hh_l{k}"), vec![4 * h, *h]),
                        (format!("{name}.bias_ih_l{k}"), vec![4 * h]),
                        (format!("{name}.bias_hh_l{k}"), vec![4 * h]),
                    ]
                })
                .collect(),
            LayerConfig::Linear {
                name,
                in_features,
                out_features,
            } => vec![
                (format!("{name}.weight"), vec![*out_features, *in_features]),
                (format!("{name}.bias"), vec![*out_features]),
            ],
            LayerConfig::LayerNorm { name, size, .. } => vec![
                (format!("{name}.weight"), vec![*size]),
                (format!("{name}.bias"), vec![*size]),
            ],
            LayerConfig::Relu { .. } | LayerConfig::LogSoftmax { .. } => vec![],
            LayerConfig::Nade {
                name,
                visible,
                hidden,
                cond_size,
            } => vec![
                (format!("{name}.W"), vec![*hidden, *visible]),
                (format!("{name}.V"), vec![*visible, *hidden]),
                (format!("{name}.b_proj.weight"), vec![*visible, *cond_size]),
                (format!("{name}.b_proj.bias"), vec![*visible]),
                (format!("{name}.c_proj.weight"), vec![*hidden, *cond_size]),
                (format!("{name}.c_proj.bias"), vec![*hidden]),
            ],
        }
    }
}

/// `config.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Always `reprise-model`.
    pub format: String,
    /// Format version; this build reads version 1.
    pub version: u32,
    /// `speech-ctc` or `music-nade`.
    pub kind: String,
    /// The run-time weight format the model is meant for.
    pub weight_format: Format,
    /// The network, applied in order.
    pub layers: Vec<LayerConfig>,
    /// Task parameters of a music model.
    #[serde(default)]
    pub music: Option<serde_json::Value>,
    /// Task parameters of a speech model.
    #[serde(default)]
    pub speech: Option<serde_json::Value>,
    /// Free-form facts about training (ignored by the engine).
    #[serde(default)]
    pub training: Option<serde_json::Value>,
}

/// A validated tensor, widened to f32.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A loaded, validated model: config plus tensors.
#[derive(Debug)]
pub struct Model {
    /// The folder it came from.
    pub dir: PathBuf,
    /// The parsed config.
    pub config: ModelConfig,
    tensors: HashMap<String, Tensor>,
}

impl Model {
    /// Loads and validates `dir/config.json` and `dir/model.safetensors`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Model, ModelError> {
        let dir = dir.as_ref().to_path_buf();
        let cpath = dir.join("config.json");
        let text = std::fs::read_to_string(&cpath).map_err(|source| ModelError::Io {
            path: cpath.clone(),
            source,
        })?;
        let config: ModelConfig = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            path: cpath.clone(),
            message: e.to_string(),
        })?;
        validate_config(&config).map_err(|message| ModelError::Config {
            path: cpath.clone(),
            message,
        })?;
        let wpath = dir.join("model.safetensors");
        let bytes = std::fs::read(&wpath).map_err(|source| ModelError::Io {
            path: wpath.clone(),
            source,
        })?;
        let tensors = read_tensors(&config, &bytes, &wpath)?;
        Ok(Model {
            dir,
            config,
            tensors,
        })
    }

    /// Builds a model from a config and tensors already in memory (validated the same way).
    pub fn from_parts(
        config: ModelConfig,
        tensors: HashMap<String, Tensor>,
    ) -> Result<Model, ModelError> {
        let path = PathBuf::from("<memory>");
        validate_config(&config).map_err(|message| ModelError::Config {
            path: path.clone(),
            message,
        })?;
        check_tensor_set(&config, &path, |name| {
            tensors.get(name).map(|t| t.shape.clone())
        })?;
        Ok(Model {
            dir: path,
            config,
            tensors,
        })
    }

    /// The tensor `name`; the loader guarantees every tensor a layer declares exists.
    pub fn tensor(&self, name: &str) -> &Tensor {
        &self.tensors[name]
    }

    /// The first layer of the given name.
    pub fn layer(&self, name: &str) -> Option<&LayerConfig> {
        self.config.layers.iter().find(|l| match l {
            LayerConfig::Lstm { name: n, .. }
            | LayerConfig::Linear { name: n, .. }
            | LayerConfig::LayerNorm { name: n, .. }
            | LayerConfig::Nade { name: n, .. } => n == name,
            LayerConfig::Relu { name: n } | LayerConfig::LogSoftmax { name: n } => {
                n.as_deref() == Some(name)
            }
        })
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }
}

fn validate_config(config: &ModelConfig) -> Result<(), String> {
    if config.format != "reprise-model" {
        return Err(format!(
            "format is {:?}, expected \"reprise-model\"",
            config.format
        ));
    }
    if config.version != 1 {
        return Err(format!(
            "version {} is not supported (this build reads 1)",
            config.version
        ));
    }
    if config.layers.is_empty() {
        return Err("no layers".into());
    }
    let mut size: Option<usize> = None;
    for (i, layer) in config.layers.iter().enumerate() {
        let zero = match layer {
            LayerConfig::Lstm {
                input_size,
                hidden_size,
                num_layers,
                ..
            } => *input_size == 0 || *hidden_size == 0 || *num_layers == 0,
            LayerConfig::Linear {
                in_features,
                out_features,
                ..
            } => *in_features == 0 || *out_features == 0,
            LayerConfig::LayerNorm { size, eps, .. } => *size == 0 || eps.is_nan() || *eps <= 0.0,
            LayerConfig::Nade {
                visible,
                hidden,
                cond_size,
                ..
            } => *visible == 0 || *hidden == 0 || *cond_size == 0,
            LayerConfig::Relu { .. } | LayerConfig::LogSoftmax { .. } => false,
        };
        if zero {
            return Err(format!(
                "layer {i} has a zero size or a non-positive epsilon"
            ));
        }
        if let (Some(have), Some(want)) = (size, layer.input_size())
            && have != want
        {
            return Err(format!(
                "layer {i} takes {want} inputs but the layer before it gives {have}"
            ));
        }
        if size.is_none() && layer.input_size().is_none() {
            return Err(format!("layer {i} cannot come first"));
        }
        size = match layer.output_size(size.or(layer.input_size()).unwrap_or(0)) {
            Some(s) => Some(s),
            None if i + 1 == config.layers.len() => None,
            None => return Err(format!("layer {i} (nade) must be the last layer")),
        };
    }
    let mut names: Vec<String> = config
        .layers
        .iter()
        .flat_map(|l| l.tensors())
        .map(|(n, _)| n)
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    if names.len() != total {
        return Err("two layers share a tensor name".into());
    }
    Ok(())
}

fn check_tensor_set(
    config: &ModelConfig,
    path: &Path,
    shape_of: impl Fn(&str) -> Option<Vec<usize>>,
) -> Result<(), ModelError> {
    for (name, expected) in config.layers.iter().flat_map(|l| l.tensors()) {
        match shape_of(&name) {
            None => {
                return Err(ModelError::MissingTensor {
                    path: path.into(),
                    name,
                });
            }
            Some(actual) if actual != expected => {
                return Err(ModelError::WrongShape {
                    path: path.into(),
                    name,
                    expected,
                    actual,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn read_tensors(
    config: &ModelConfig,
    bytes: &[u8],
    path: &Path,
) -> Result<HashMap<String, Tensor>, ModelError> {
    use safetensors::{Dtype, SafeTensors};
    let st = SafeTensors::deserialize(bytes).map_err(|e| ModelError::Weights {
        path: path.into(),
        message: e.to_string(),
    })?;
    check_tensor_set(config, path, |name| {
        st.tensor(name).ok().map(|t| t.shape().to_vec())
    })?;
    let wanted: std::collections::HashSet<String> = config
        .layers
        .iter()
        .flat_map(|l| l.tensors())
        .map(|(n, _)| n)
        .collect();
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if !wanted.contains(&name) {
            return Err(ModelError::UnexpectedTensor {
                path: path.into(),
                name,
            });
        }
        let raw = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
            other => {
                return Err(ModelError::WrongDtype {
                    path: path.into(),
                    name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        if data.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                path: path.into(),
                name,
            });
        }
        out.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

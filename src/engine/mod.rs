//! LSTM inference: model files, kernels and layers. No I/O beyond loading a model, no threads,
//! and no allocation after construction.

mod error;
pub mod kernels;
pub mod layers;
pub mod lstm;
pub mod weights;

pub use error::EngineError;
pub use kernels::{Format, Isa};
pub use lstm::{LstmStack, LstmState, StackOptions};
pub use weights::{Model, ModelError};

//! LSTM inference: model files, kernels and layers. No I/O beyond loading a model, no threads,
//! and no allocation after construction.

pub mod kernels;

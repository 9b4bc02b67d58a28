//! Reading the engine's golden files (written by models/training/engine_golden.py).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn golden_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(name)
}

/// A tensor of `io.safetensors` as (shape, values).
pub fn io_tensor(name: &str, tensor: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(golden_dir(name).join("io.safetensors")).expect("golden io file");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let view = st.tensor(tensor).expect("tensor present");
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), data)
}

pub const CASES: [&str; 3] = ["lstm-3x48", "lstm-2x33", "lstm-1x64"];

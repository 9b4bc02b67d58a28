//! The model loader refuses broken files with a typed error that names the problem.

#[path = "common/golden.rs"]
mod golden;

use std::path::Path;

use golden::golden_dir;
use reprise::engine::kernels::Format;
use reprise::engine::{LstmStack, Model, ModelError, StackOptions};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The tensors of the lstm-2x33 golden model as (name, dtype, shape, bytes).
fn tensors() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(golden_dir("lstm-2x33").join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn config() -> String {
    std::fs::read_to_string(golden_dir("lstm-2x33").join("config.json")).unwrap()
}

fn write(dir: &Path, config: &str, t: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    std::fs::write(dir.join("config.json"), config).unwrap();
    let views: Vec<(String, TensorView<'_>)> = t
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

fn load_with(
    config: &str,
    t: &[(String, Dtype, Vec<usize>, Vec<u8>)],
) -> Result<Model, ModelError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), config, t);
    Model::load(dir.path())
}

#[test]
fn the_golden_model_round_trips() {
    let m = load_with(&config(), &tensors()).expect("valid files load");
    assert_eq!(
        m.parameter_count(),
        4 * 33 * (7 + 33 + 2) + 4 * 33 * (33 + 33 + 2)
    );
}

#[test]
fn truncated_or_garbled_weights_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &config(), &tensors());
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    for broken in [
        bytes[..bytes.len() - 100].to_vec(),
        bytes[..5].to_vec(),
        Vec::new(),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage".to_vec(),
    ] {
        std::fs::write(&path, &broken).unwrap();
        let err = Model::load(dir.path()).unwrap_err();
        assert!(matches!(err, ModelError::Weights { .. }), "{err}");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}

#[test]
fn missing_files_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = Model::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, ModelError::Io { .. }) && err.to_string().contains("config.json"),
        "{err}"
    );
    std::fs::write(dir.path().join("config.json"), config()).unwrap();
    let err = Model::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, ModelError::Io { .. }) && err.to_string().contains("model.safetensors"),
        "{err}"
    );
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let t = tensors();
    let good = config();
    let cases = [
        ("{", "EOF"),
        (
            &good.replace("\"version\": 1", "\"version\": 7") as &str,
            "version 7",
        ),
        (&good.replace("reprise-model", "other"), "format"),
        (&good.replace("\"f32\"", "\"f16\""), "f16"),
        (
            &good.replace("\"num_layers\": 2", "\"num_layers\": 2, \"extra\": 1"),
            "extra",
        ),
        (
            &good.replace("\"num_layers\": 2", "\"num_layers\": 0"),
            "zero",
        ),
        (
            &good.replace("\"type\": \"lstm\"", "\"type\": \"gru\""),
            "gru",
        ),
    ];
    for (cfg, needle) in cases {
        let err = load_with(cfg, &t).unwrap_err();
        assert!(matches!(err, ModelError::Config { .. }), "{err}");
        assert!(
            err.to_string().contains(needle),
            "{err} should mention {needle}"
        );
    }
    // A second layer whose input does not match the first layer's output.
    let mismatched = good.replace(
        "\n  ],",
        ",\n    {\"type\": \"linear\", \"name\": \"out\", \"in_features\": 32, \"out_features\": 5}\n  ],",
    );
    let err = load_with(&mismatched, &t).unwrap_err();
    assert!(err.to_string().contains("takes 32 inputs"), "{err}");
}

#[test]
fn tensor_problems_name_the_tensor() {
    let good = tensors();
    let cfg = config();

    let missing: Vec<_> = good
        .iter()
        .filter(|t| t.0 != "lstm.bias_hh_l1")
        .cloned()
        .collect();
    let err = load_with(&cfg, &missing).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { name, .. } if name == "lstm.bias_hh_l1"),
        "{err}"
    );

    let mut reshaped = good.clone();
    let i = reshaped
        .iter()
        .position(|t| t.0 == "lstm.weight_hh_l0")
        .unwrap();
    reshaped[i].2 = vec![33, 4 * 33];
    let err = load_with(&cfg, &reshaped).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongShape { name, .. } if name == "lstm.weight_hh_l0"),
        "{err}"
    );

    let mut retyped = good.clone();
    let i = retyped
        .iter()
        .position(|t| t.0 == "lstm.bias_ih_l0")
        .unwrap();
    retyped[i].1 = Dtype::I32;
    let err = load_with(&cfg, &retyped).unwrap_err();
    assert!(
        matches!(&err, ModelError::WrongDtype { name, .. } if name == "lstm.bias_ih_l0"),
        "{err}"
    );

    let mut extra = good.clone();
    extra.push(("stray".into(), Dtype::F32, vec![1], vec![0; 4]));
    let err = load_with(&cfg, &extra).unwrap_err();
    assert!(
        matches!(&err, ModelError::UnexpectedTensor { name, .. } if name == "stray"),
        "{err}"
    );

    let mut nan = good.clone();
    nan[0].3[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = load_with(&cfg, &nan).unwrap_err();
    assert!(matches!(err, ModelError::NonFinite { .. }), "{err}");
}

#[test]
fn bf16_files_load_and_stay_close_to_f32() {
    let f32s = tensors();
    let bf16s: Vec<_> = f32s
        .iter()
        .map(|(n, _, s, b)| {
            let halves: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    reprise::engine::kernels::f32_to_bf16(v).to_le_bytes()
                })
                .collect();
            (n.clone(), Dtype::BF16, s.clone(), halves)
        })
        .collect();
    let a = load_with(&config(), &f32s).unwrap();
    let b = load_with(&config(), &bf16s).unwrap();
    let run = |m: &Model| {
        let mut s = LstmStack::from_model(m, "lstm", StackOptions::new(Format::F32, 1)).unwrap();
        let mut st = s.new_state();
        let x: Vec<f32> = (0..50 * 7)
            .map(|i| ((i * 17 % 29) as f32 - 14.0) / 10.0)
            .collect();
        let mut y = vec![0.0; 50 * 33];
        s.forward_chunk_into(&mut st, &x, &mut y).unwrap();
        y
    };
    let (ya, yb) = (run(&a), run(&b));
    let err = ya
        .iter()
        .zip(&yb)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    assert!(err > 0.0 && err < 0.05, "bf16 file error {err}");
}

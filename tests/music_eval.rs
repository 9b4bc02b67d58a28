//! `reprise music eval` against the Python reference: the exact NLL per frame of a trained
//! model on golden frames written by models/training/music/golden.py, and on the whole valid
//! split against the figure the reference computed for the model card.

mod common;

use std::path::{Path, PathBuf};

use common::{reprise, reprise_fails, stderr};
use reprise::music::model::{NadeModel, read_split};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `reprise music eval` and parses its last line.
fn eval(model: &str, data: &Path, split: &str, format: Option<&str>) -> (f64, usize) {
    let model = root().join("models").join(model);
    let mut args = vec![
        "music",
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--split",
        split,
    ];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    let out = reprise(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().expect("a result line");
    let mut nll = None;
    let mut frames = None;
    for field in last.split_whitespace() {
        match field.split_once('=') {
            Some(("nll_per_frame", v)) => nll = v.parse().ok(),
            Some(("frames", v)) => frames = v.parse().ok(),
            _ => {}
        }
    }
    (nll.expect("nll_per_frame="), frames.expect("frames="))
}

/// Every bundled music model that ships a golden file.
fn golden_models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("music-") && root().join("models").join(n).join("golden.json").exists()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn golden_frames_match_the_python_reference() {
    let names = golden_models();
    assert!(names.iter().any(|n| n == "music-jsb"), "{names:?}");
    for name in names {
        golden_frames_match(&name);
    }
}

fn golden_frames_match(name: &str) {
    let golden = root().join("models").join(name).join("golden.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    let expected = &doc["expected"];
    let want = expected["nll_per_frame"].as_f64().unwrap();
    let tol = expected["tolerance"].as_f64().unwrap();
    let (got, frames) = eval(name, &golden, "golden", None);
    assert_eq!(frames as u64, expected["frames"].as_u64().unwrap());
    assert!(
        (got - want).abs() <= tol,
        "{name}: Rust {got} vs Python {want}"
    );

    // Frame by frame, through the library.
    let mut model = NadeModel::load(root().join("models").join(name), None).unwrap();
    let pieces = read_split(&golden, "golden", &model.config).unwrap();
    let per_frame: Vec<f64> = expected["frame_nll"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let mut k = 0;
    for piece in &pieces {
        let mut state = model.new_state();
        let mut prev = vec![false; model.visible()];
        for frame in piece {
            model.step(&mut state, &prev).unwrap();
            let nll = model.frame_nll(frame).unwrap();
            assert!(
                (nll - per_frame[k]).abs() < 1e-3,
                "{name} frame {k}: {nll} vs {}",
                per_frame[k]
            );
            prev.clone_from(frame);
            k += 1;
        }
    }
    assert_eq!(k, per_frame.len());
}

#[test]
fn the_valid_split_matches_the_model_card() {
    let data = root().join("models/training/data/polyphonic/JSB_Chorales.json");
    let card = std::fs::read_to_string(root().join("models/music-jsb/README.md")).unwrap();
    // The card's table row: | valid | <nll> | <frames> |
    let row = card
        .lines()
        .find(|l| l.starts_with("| valid |"))
        .expect("the model card has a valid row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let (want, want_frames): (f64, usize) = (cells[2].parse().unwrap(), cells[3].parse().unwrap());
    let (got, frames) = eval("music-jsb", &data, "valid", None);
    assert_eq!(frames, want_frames);
    assert!((got - want).abs() < 1e-3, "Rust {got} vs card {want}");
    // Reduced formats cost little.
    let (bf16, _) = eval("music-jsb", &data, "valid", Some("bf16"));
    let (int8, _) = eval("music-jsb", &data, "valid", Some("int8"));
    assert!(
        (bf16 - got).abs() < 0.05 && (int8 - got).abs() < 0.1,
        "{bf16} {int8} vs {got}"
    );
}

#[test]
fn bad_data_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("models/music-jsb");
    let m = model.to_str().unwrap();
    let data = dir.path().join("d.json");
    std::fs::write(&data, r#"{"train": [[[60]]], "valid": [[[60, 64], []]]}"#).unwrap();
    let d = data.to_str().unwrap();
    let text = reprise_fails(
        &[
            "music", "eval", "--model", m, "--data", d, "--split", "test",
        ],
        &[],
    );
    assert!(
        text.contains("no split called \"test\"") && text.contains("train, valid"),
        "{text}"
    );
    std::fs::write(&data, r#"{"valid": [[["x"]]]}"#).unwrap();
    let text = reprise_fails(&["music", "eval", "--model", m, "--data", d], &[]);
    assert!(text.contains("not a MIDI note"), "{text}");
    std::fs::write(&data, "{").unwrap();
    let text = reprise_fails(&["music", "eval", "--model", m, "--data", d], &[]);
    assert!(text.contains("not valid JSON"), "{text}");
}

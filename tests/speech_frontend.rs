//! The Rust front end against the training code's golden file
//! (`models/training/speech/frontend_golden.json`, written by `golden.py` there), and streaming
//! equal to one-shot processing.

use proptest::prelude::*;
use reprise::speech::features::{FrontEnd, FrontEndConfig};

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/training/speech/frontend_golden.json"),
    )
    .expect("golden file");
    serde_json::from_str(&text).expect("golden JSON")
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(row) => row
                .iter()
                .map(|y| y.as_f64().expect("number") as f32)
                .collect(),
            None => vec![x.as_f64().expect("number") as f32],
        })
        .collect()
}

fn config(mean: Vec<f32>, std: Vec<f32>) -> FrontEndConfig {
    FrontEndConfig {
        sample_rate: 16_000,
        pre_emphasis: 0.0,
        win_length: 400,
        hop_length: 160,
        n_fft: 512,
        n_mels: 80,
        fmin: 20.0,
        fmax: 7600.0,
        log_floor: 1e-10,
        feature_mean: mean,
        feature_std: std,
        stack: 3,
        stride: 3,
    }
}

fn run(fe: &mut FrontEnd, chunks: &[&[f32]]) -> Vec<f32> {
    let mut out = Vec::new();
    for c in chunks {
        fe.push(c, &mut |step, _| out.extend_from_slice(step));
    }
    out
}

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn front_end_matches_the_training_code() {
    let g = golden();
    assert_eq!(
        g["front_end"]["n_mels"], 80,
        "the golden file's front end changed"
    );
    assert_eq!(g["front_end"]["stack"], 3);
    let wave: Vec<f32> = floats(&g["pcm"]).iter().map(|v| v / 32768.0).collect();
    // Raw log-mel: neutral normalisation, one frame per step.
    let mut raw = config(vec![0.0; 80], vec![1.0; 80]);
    raw.stack = 1;
    raw.stride = 1;
    let log_mel = run(&mut FrontEnd::new(raw).unwrap(), &[&wave]);
    let want = floats(&g["log_mel"]);
    let err = max_err(&log_mel, &want);
    assert!(err <= 1e-4, "log-mel max abs error {err}");
    // Normalised and stacked steps.
    let mut fe = FrontEnd::new(config(floats(&g["mean"]), floats(&g["std"]))).unwrap();
    let stacked = run(&mut fe, &[&wave]);
    let want = floats(&g["stacked"]);
    let err = max_err(&stacked, &want);
    assert!(err <= 1e-4, "stacked max abs error {err}");
    assert_eq!(fe.frames(), 11);
    // Silence hits the log floor.
    let mut raw = config(vec![0.0; 80], vec![1.0; 80]);
    raw.stack = 1;
    raw.stride = 1;
    let silent = run(&mut FrontEnd::new(raw).unwrap(), &[&[0.0; 800]]);
    let floor = g["silent_800_samples_log_mel_row0_first"].as_f64().unwrap() as f32;
    assert!((silent[0] - floor).abs() < 1e-4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_chunks_give_the_one_shot_steps(
        cuts in proptest::collection::vec(0usize..1500, 0..12),
        stride in 1usize..4,
    ) {
        let wave: Vec<f32> = (0..6000)
            .map(|i| (i as f32 * 0.07).sin() * 0.3 + ((i * 7919) % 101) as f32 / 1000.0)
            .collect();
        let mut cfg = config(vec![-5.0; 80], vec![2.0; 80]);
        cfg.stride = stride;
        let whole = run(&mut FrontEnd::new(cfg.clone()).unwrap(), &[&wave]);
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c * 4 % wave.len()).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut at = 0;
        for p in points {
            chunks.push(&wave[at..p.max(at)]);
            at = p.max(at);
        }
        chunks.push(&wave[at..]);
        let chunked = run(&mut FrontEnd::new(cfg).unwrap(), &chunks);
        prop_assert_eq!(whole, chunked);
    }
}

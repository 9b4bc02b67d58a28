//! Small speech models with random weights and test audio, made in the tests.
#![allow(dead_code)]

use std::path::Path;

use super::music::{random, write_tensors};

/// The vocabulary of the English speech model.
pub fn vocabulary() -> Vec<String> {
    let mut v = vec!["<blank>".to_string(), " ".into(), "'".into()];
    v.extend(('a'..='z').map(|c| c.to_string()));
    v
}

/// Writes a `speech-ctc` model with random weights (LSTM of `hidden` units, one layer) into
/// `dir`. The output layer's weights are large enough that the best symbol changes with the
/// input, so the model writes some text for most sounds.
pub fn write_random_model(dir: &Path, hidden: usize) {
    write_random_model_sized(dir, hidden, 1);
}

/// As [`write_random_model`], with `layers` LSTM layers.
pub fn write_random_model_sized(dir: &Path, hidden: usize, layers: usize) {
    let (n_in, h, v) = (240, hidden, vocabulary().len());
    let mut seed = 0x5EED_5EED;
    let mut t = Vec::new();
    for k in 0..layers {
        let inp = if k == 0 { n_in } else { h };
        let scale = 0.3 * (n_in as f32 / inp as f32).sqrt();
        let mut push = |name: String, shape: Vec<usize>, scale: f32| {
            let n = shape.iter().product();
            t.push((name, shape, random(n, &mut seed, scale, 0.0)));
        };
        push(format!("lstm.weight_ih_l{k}"), vec![4 * h, inp], scale);
        push(format!("lstm.weight_hh_l{k}"), vec![4 * h, h], 0.5);
        push(format!("lstm.bias_ih_l{k}"), vec![4 * h], 0.5);
        push(format!("lstm.bias_hh_l{k}"), vec![4 * h], 0.5);
    }
    t.push((
        "out.weight".into(),
        vec![v, h],
        random(v * h, &mut seed, 6.0, 0.0),
    ));
    t.push(("out.bias".into(), vec![v], random(v, &mut seed, 1.0, 0.0)));
    write_tensors(dir, t);
    let config = serde_json::json!({
        "format": "reprise-model", "version": 1, "kind": "speech-ctc", "weight_format": "f32",
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": n_in, "hidden_size": h, "num_layers": layers},
            {"type": "linear", "name": "out", "in_features": h, "out_features": v},
            {"type": "log_softmax"}
        ],
        "speech": {
            "sample_rate": 16000, "pre_emphasis": 0.0, "window": "hann-periodic",
            "win_length": 400, "hop_length": 160, "n_fft": 512, "padding": "none",
            "spectrum": "power", "n_mels": 80, "mel_scale": "htk", "fmin": 20.0, "fmax": 7600.0,
            "mel_norm": "none", "log": "ln", "log_floor": 1e-10,
            "feature_mean": vec![-6.0; 80], "feature_std": vec![4.0; 80],
            "stack": 3, "stride": 3, "vocabulary": vocabulary(), "blank": 0
        }
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// A small ARPA bigram model.
pub const TINY_ARPA: &str = "\\data\\
ngram 1=4
ngram 2=1

\\1-grams:
-1.0 <s> -0.5
-1.0 </s>
-1.5 hello -0.3
-2.0 <unk>

\\2-grams:
-0.2 <s> hello

\\end\\
";

/// Speech-like test audio: bursts of harmonic, noisy sound separated by silences, at `rate`.
pub fn babble(rate: u32, seconds: f32, seed: u32) -> Vec<f32> {
    let n = (rate as f32 * seconds) as usize;
    let mut state = seed.wrapping_mul(747_796_405).wrapping_add(1);
    (0..n)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            let t = i as f32 / rate as f32;
            // 0.7 s of sound, 1.3 s of silence.
            let phase = t % 2.0;
            if phase > 0.7 {
                return 0.0;
            }
            let f0 = 120.0 + 40.0 * (t * 3.0).sin();
            let voiced: f32 = (1..8)
                .map(|k| (2.0 * std::f32::consts::PI * f0 * k as f32 * t).sin() / k as f32)
                .sum();
            0.2 * voiced * (1.0 + (t * 11.0).sin()) + 0.05 * noise
        })
        .collect()
}

/// Writes a 16-bit WAV file with `channels` copies of `mono`.
pub fn write_wav(path: &Path, mono: &[f32], rate: u32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &x in mono {
        for _ in 0..channels {
            w.write_sample((x.clamp(-1.0, 1.0) * 32767.0) as i16)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

//! The bundled speech model on the bundled spoken samples (`samples/speech/`): eight
//! sentences that are neither in the training text nor among the Asterisk prompts, spoken by
//! the two voices that training never hears. `reprise transcribe` must stay within the word
//! error rate stated in `models/speech-en/README.md`, on the files as they are and after a
//! change of rate and channel count.

mod common;

use std::path::{Path, PathBuf};

use common::{reprise, stderr};
use reprise::speech::score::word_errors;

/// The bound the bundled model has to meet on these samples. The current checkpoint does not
/// (84.1% with the LM, see the model card), so the tests are ignored by default; run them with
/// `cargo test --test speech_accuracy -- --ignored` after exporting a model.
const MAX_WER: f64 = 0.25;

fn samples() -> (PathBuf, Vec<(String, String)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/speech");
    let list = std::fs::read_to_string(dir.join("transcripts.tsv")).unwrap();
    let rows = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (f, t) = l.split_once('\t').unwrap();
            (f.to_owned(), t.to_owned())
        })
        .collect();
    (dir, rows)
}

/// Transcribes `files` in one run and returns the word error rate against `texts`.
fn wer_of(files: &[PathBuf], texts: &[&str], extra: &[&str]) -> (f64, String) {
    let mut args = vec!["transcribe", "--format", "jsonl"];
    args.extend_from_slice(extra);
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    args.extend_from_slice(&names);
    let out = reprise(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), files.len(), "{stdout}");
    let (mut errors, mut words) = (0, 0);
    let mut report = String::new();
    for ((r, file), text) in results.iter().zip(&names).zip(texts) {
        assert_eq!(r["file"].as_str().unwrap(), *file);
        let hyp = r["text"].as_str().unwrap();
        let (e, n) = word_errors(text, hyp);
        errors += e;
        words += n;
        report += &format!("{text:?} -> {hyp:?}\n");
    }
    (errors as f64 / words as f64, report)
}

#[test]
#[ignore = "the bundled speech model is an early checkpoint above this bound (models/speech-en/README.md)"]
fn bundled_model_transcribes_the_spoken_samples() {
    let (dir, rows) = samples();
    assert!(rows.len() >= 8);
    let files: Vec<PathBuf> = rows.iter().map(|(f, _)| dir.join(f)).collect();
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let (wer, report) = wer_of(&files, &texts, &[]);
    assert!(wer <= MAX_WER, "WER {wer:.3} > {MAX_WER}\n{report}");
    let (wer, report) = wer_of(&files, &texts, &["--no-lm"]);
    assert!(wer <= MAX_WER + 0.1, "WER without LM {wer:.3}\n{report}");
}

/// The same speech at 48 kHz in stereo (each sample held for three, a different channel
/// gain on each side) goes through the resampler and the mix-down to the same accuracy.
#[test]
#[ignore = "the bundled speech model is an early checkpoint above this bound (models/speech-en/README.md)"]
fn other_rates_and_channel_counts_transcribe_alike() {
    let (dir, rows) = samples();
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (f, _) in &rows {
        let mut r = hound::WavReader::open(dir.join(f)).unwrap();
        let mono: Vec<f32> = r
            .samples::<i16>()
            .map(|s| s.unwrap() as f32 / 32768.0)
            .collect();
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path = tmp.path().join(f);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for &v in &mono {
            for _ in 0..3 {
                w.write_sample((v * 0.9 * 32767.0) as i16).unwrap();
                w.write_sample((v * 0.7 * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
        files.push(path);
    }
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let (wer, report) = wer_of(&files, &texts, &[]);
    assert!(wer <= MAX_WER, "WER {wer:.3} > {MAX_WER}\n{report}");
}

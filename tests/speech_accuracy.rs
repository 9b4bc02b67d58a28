//! The bundled speech model on the bundled spoken samples (`samples/speech/`): sixteen
//! sentences that are neither in the training text nor among the Asterisk prompts, spoken by
//! voices that training never hears (two older synthetic voices and four natural Kokoro
//! voices). `reprise transcribe` must stay within the error rates the shipped model measures
//! there (`models/speech-en/README.md`), on the files as they are and after a change of rate
//! and channel count, so that a broken, swapped or mis-exported model fails here.

mod common;

use std::path::{Path, PathBuf};

use common::{reprise, stderr};
use reprise::speech::score::{char_errors, word_errors};

/// The bounds the bundled model has to meet on these samples with its LM: its measured figures
/// (WER 85.4%, CER 45.5%, see the model card) plus a margin; a model that has learnt nothing
/// scores a CER near 100%. Tighten them whenever a better model ships.
const MAX_WER: f64 = 0.92;
const MAX_CER: f64 = 0.52;

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

/// Transcribes `files` in one run and returns the word and character error rates against
/// `texts`, with a report of each sentence.
fn rates_of(files: &[PathBuf], texts: &[&str], extra: &[&str]) -> (f64, f64, String) {
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
    let (mut errors, mut words, mut char_errs, mut chars) = (0, 0, 0, 0);
    let mut report = String::new();
    for ((r, file), text) in results.iter().zip(&names).zip(texts) {
        assert_eq!(r["file"].as_str().unwrap(), *file);
        let hyp = r["text"].as_str().unwrap();
        let (e, n) = word_errors(text, hyp);
        errors += e;
        words += n;
        let (e, n) = char_errors(text, hyp);
        char_errs += e;
        chars += n;
        report += &format!("{text:?} -> {hyp:?}\n");
    }
    let (wer, cer) = (
        errors as f64 / words as f64,
        char_errs as f64 / chars as f64,
    );
    report += &format!("WER {wer:.3} CER {cer:.3}\n");
    (wer, cer, report)
}

fn check(wer: f64, cer: f64, report: &str) {
    eprint!("{report}");
    assert!(
        wer <= MAX_WER && cer <= MAX_CER,
        "WER {wer:.3} (bound {MAX_WER}), CER {cer:.3} (bound {MAX_CER})\n{report}"
    );
}

#[test]
fn bundled_model_transcribes_the_spoken_samples() {
    let (dir, rows) = samples();
    assert!(rows.len() >= 16);
    let files: Vec<PathBuf> = rows.iter().map(|(f, _)| dir.join(f)).collect();
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let (wer, cer, report) = rates_of(&files, &texts, &[]);
    check(wer, cer, &report);
    // Without the LM the characters stay about as good (the LM mostly fixes spelling).
    let (_, cer, report) = rates_of(&files, &texts, &["--no-lm"]);
    assert!(
        cer <= MAX_CER + 0.05,
        "CER without the LM {cer:.3}\n{report}"
    );
}

/// The same speech at 48 kHz in stereo (each sample held for three, a different channel
/// gain on each side) goes through the resampler and the mix-down to the same accuracy.
#[test]
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
    let (wer, cer, report) = rates_of(&files, &texts, &[]);
    check(wer, cer, &report);
}

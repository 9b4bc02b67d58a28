//! `reprise transcribe` end to end on a small speech model with random weights written by the
//! test: the formats, several files with a broken one, bad options. What is checked does not
//! depend on what a model has learned.

mod common;
#[path = "common/music.rs"]
mod music;
#[path = "common/speech.rs"]
mod speech;

use std::path::{Path, PathBuf};

use common::{reprise, reprise_fails, stderr};

struct Setup {
    _dir: tempfile::TempDir,
    model: PathBuf,
    wav: PathBuf,
    root: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    speech::write_random_model(&model, 24);
    std::fs::write(model.join("lm.arpa"), speech::TINY_ARPA).unwrap();
    // 48 kHz stereo: resampled and mixed down on the way in.
    let wav = dir.path().join("babble.wav");
    speech::write_wav(&wav, &speech::babble(48_000, 5.0, 1), 48_000, 2);
    Setup {
        root: dir.path().to_owned(),
        model,
        wav,
        _dir: dir,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = reprise(args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn jsonl_has_words_with_times_and_confidences() {
    let t = setup();
    let jsonl = |extra: &[&str]| {
        let mut args = vec!["transcribe", s(&t.wav), "--model", s(&t.model)];
        args.extend_from_slice(&["--format", "jsonl"]);
        args.extend_from_slice(extra);
        stdout_of(&args)
    };
    let text = jsonl(&[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["file"], s(&t.wav));
    let words = v["words"].as_array().unwrap();
    let segments = v["segments"].as_array().unwrap();
    assert!(!words.is_empty(), "the random model wrote nothing: {text}");
    // Sound comes in three bursts separated by 1.3 s of silence: the endpoint splits them.
    assert!(segments.len() >= 2, "{text}");
    let mut last = 0.0;
    for w in words {
        let (start, end, conf) = (
            w["start"].as_f64().unwrap(),
            w["end"].as_f64().unwrap(),
            w["conf"].as_f64().unwrap(),
        );
        assert!(start >= last - 1e-9 && end > start && end <= 5.1, "{w}");
        assert!((0.0..=1.0).contains(&conf), "{w}");
        assert!(!w["word"].as_str().unwrap().contains(' '));
        last = start;
    }
    let joined: Vec<&str> = words.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(v["text"].as_str().unwrap(), joined.join(" "));
    // The same words as plain text, and the same again with a greedy decoder's format flags.
    let plain = stdout_of(&["transcribe", s(&t.wav), "--model", s(&t.model)]);
    assert_eq!(plain.trim_end(), v["text"].as_str().unwrap());
    assert!(segments.iter().all(|s| s.get("alternatives").is_none()));

    // --alternatives 3: each segment lists up to three distinct texts, its own text first.
    let text = jsonl(&["--alternatives", "3"]);
    let n_best: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(n_best["text"], v["text"]);
    for seg in n_best["segments"].as_array().unwrap() {
        let alts = seg["alternatives"].as_array().expect("alternatives");
        assert!((1..=3).contains(&alts.len()), "{seg}");
        assert_eq!(alts[0]["text"], seg["text"]);
        let conf: Vec<f64> = alts
            .iter()
            .map(|a| a["confidence"].as_f64().unwrap())
            .collect();
        assert!(conf.windows(2).all(|w| w[0] >= w[1]), "{seg}");
        // Each confidence is rounded to 0.001.
        assert!(conf.iter().sum::<f64>() <= 1.0 + 2e-3, "{seg}");
    }
}

#[test]
fn srt_and_vtt_are_well_formed() {
    let t = setup();
    let srt = stdout_of(&[
        "transcribe",
        s(&t.wav),
        "--model",
        s(&t.model),
        "--format",
        "srt",
    ]);
    let cues: Vec<&str> = srt.split("\n\n").filter(|c| !c.trim().is_empty()).collect();
    assert!(!cues.is_empty(), "{srt}");
    for (i, cue) in cues.iter().enumerate() {
        let lines: Vec<&str> = cue.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string(), "{srt}");
        let (a, b) = lines[1].split_once(" --> ").unwrap();
        assert!(a.len() == 12 && a.as_bytes()[8] == b',' && a < b, "{cue}");
        assert!(!lines[2].is_empty());
    }
    let out = t.root.join("out.vtt");
    stdout_of(&[
        "transcribe",
        s(&t.wav),
        "--model",
        s(&t.model),
        "--format",
        "vtt",
        "-o",
        s(&out),
    ]);
    let vtt = std::fs::read_to_string(&out).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    let first = vtt.lines().nth(2).unwrap();
    assert!(
        first.contains(" --> ") && first.as_bytes()[8] == b'.',
        "{vtt}"
    );
    assert_eq!(vtt.matches(" --> ").count(), cues.len());
}

#[test]
fn a_broken_file_fails_alone() {
    let t = setup();
    let broken = t.root.join("broken.wav");
    std::fs::write(&broken, b"RIFF\x10\0\0\0WAVEjunk").unwrap();
    let missing = t.root.join("missing.flac");
    let garbage = t.root.join("noise.mp3");
    std::fs::write(&garbage, vec![7u8; 3000]).unwrap();
    let empty = t.root.join("empty.wav");
    speech::write_wav(&empty, &[], 16_000, 1);
    let out = reprise(
        &[
            "transcribe",
            s(&t.wav),
            s(&broken),
            s(&missing),
            s(&garbage),
            s(&empty),
            "--model",
            s(&t.model),
            "--format",
            "jsonl",
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for bad in [&broken, &missing, &garbage] {
        assert!(err.contains(s(bad)), "{err}");
    }
    assert!(err.contains("3 of 5 file(s)"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    let files: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["file"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(files, [s(&t.wav), s(&empty)]);
    assert!(text.lines().nth(1).unwrap().contains("\"text\":\"\""));
}

#[test]
fn bad_options_and_missing_models_are_clear() {
    let t = setup();
    let e = reprise_fails(&["transcribe", s(&t.wav), "--model", s(&t.root)], &[]);
    assert!(
        e.contains("no speech model") && e.contains("--model"),
        "{e}"
    );
    let e = reprise_fails(
        &[
            "transcribe",
            s(&t.wav),
            s(&t.wav),
            "--model",
            s(&t.model),
            "--format",
            "srt",
        ],
        &[],
    );
    assert!(e.contains("one file"), "{e}");
    let e = reprise_fails(
        &[
            "transcribe",
            s(&t.wav),
            "--model",
            s(&t.model),
            "--hotword",
            "héllo:2",
        ],
        &[],
    );
    assert!(e.contains("cannot write"), "{e}");
    let bad_lm = t.root.join("bad.arpa");
    std::fs::write(&bad_lm, "\\data\\\nngram 1=1\n").unwrap();
    let e = reprise_fails(
        &[
            "transcribe",
            s(&t.wav),
            "--model",
            s(&t.model),
            "--lm",
            s(&bad_lm),
        ],
        &[],
    );
    assert!(e.contains("bad.arpa"), "{e}");
    // Argument errors come from clap (exit code 2).
    for args in [
        vec!["transcribe", s(&t.wav), "--hotword", "x:abc"],
        vec!["transcribe", s(&t.wav), "--format", "docx"],
        vec!["transcribe", s(&t.wav), "--beam", "0"],
        vec!["transcribe"],
    ] {
        let out = reprise(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn hot_words_and_options_run() {
    let t = setup();
    for extra in [
        vec!["--no-lm"],
        vec!["--beam", "1"],
        vec!["--hotword", "hello:4", "--hotword", "abc"],
        vec!["--weights", "bf16", "--stats"],
        vec!["--lm-weight", "1.5", "--word-bonus", "-0.5"],
    ] {
        let mut args = vec!["transcribe", s(&t.wav), "--model", s(&t.model)];
        args.extend(extra);
        stdout_of(&args);
    }
}

/// `tests/data/babble.flac` is `speech::babble(16_000, 2.5, 1)` written as 16-bit WAV by
/// `speech::write_wav` and encoded with `ffmpeg -compression_level 12`.
#[test]
fn flac_decodes_losslessly_and_transcribes_like_the_wav() {
    use reprise::audio::{BlockSource, open_file, read_all};
    let t = setup();
    let flac = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/babble.flac");
    let wav = t.root.join("babble16k.wav");
    let audio = speech::babble(16_000, 2.5, 1);
    speech::write_wav(&wav, &audio, 16_000, 1);
    let mut source = open_file(&flac, Some(16_000), 0.1).unwrap();
    assert_eq!(source.sample_rate(), 16_000);
    let decoded = read_all(&mut source).unwrap();
    let mut from_wav = open_file(&wav, Some(16_000), 0.1).unwrap();
    assert_eq!(decoded, read_all(&mut from_wav).unwrap());
    assert_eq!(decoded.len(), audio.len());
    let a = stdout_of(&[
        "transcribe",
        s(&flac),
        "--model",
        s(&t.model),
        "--format",
        "srt",
    ]);
    let b = stdout_of(&[
        "transcribe",
        s(&wav),
        "--model",
        s(&t.model),
        "--format",
        "srt",
    ]);
    assert_eq!(a, b);
    assert!(a.contains(" --> "), "{a}");
}

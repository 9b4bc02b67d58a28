//! The recognizer on a random-weight speech model: chunking does not change the events,
//! partials precede finals, and broken speech configs are refused with typed errors.

#[path = "common/music.rs"]
mod music;
#[path = "common/speech.rs"]
mod speech;

use proptest::prelude::*;
use reprise::speech::{AcousticModel, Event, Recognizer, RecognizerOptions, SpeechError};

fn recognizer(dir: &std::path::Path) -> Recognizer {
    let model = AcousticModel::load(dir, None).unwrap();
    Recognizer::new(model, None, &RecognizerOptions::default()).unwrap()
}

fn events(rec: &mut Recognizer, audio: &[f32], chunks: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    let mut sink = |e: Event<'_>| match e {
        Event::Partial(t) => out.push(format!("partial {t}")),
        Event::Final(u) => {
            let words: Vec<String> = u
                .words()
                .map(|(w, t)| format!("{w}@{:.2}-{:.2}:{:.3}", t.start, t.end, t.conf))
                .collect();
            out.push(format!("final {} [{}]", u.text(), words.join(" ")));
        }
    };
    let mut at = 0;
    for &c in chunks.iter().cycle() {
        if at >= audio.len() {
            break;
        }
        let end = (at + c.max(1)).min(audio.len());
        rec.accept(&audio[at..end], &mut sink).unwrap();
        at = end;
    }
    rec.flush(&mut sink);
    out
}

#[test]
fn partials_come_before_each_final() {
    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model(dir.path(), 24);
    let mut rec = recognizer(dir.path());
    let audio = speech::babble(16_000, 6.0, 5);
    let ev = events(&mut rec, &audio, &[1600]);
    let finals: Vec<usize> = (0..ev.len())
        .filter(|&i| ev[i].starts_with("final"))
        .collect();
    assert!(finals.len() >= 2, "{ev:#?}");
    let mut prev = 0;
    for &f in &finals {
        assert!(
            f > prev && ev[prev..f].iter().any(|e| e.starts_with("partial")),
            "{ev:#?}"
        );
        prev = f + 1;
    }
    // Consecutive partials differ.
    for pair in ev.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
    // A new stream after reset gives the same events; flushing nothing reports nothing.
    rec.reset();
    assert_eq!(events(&mut rec, &audio, &[1600]), ev);
    let mut n = 0;
    rec.flush(&mut |_| n += 1);
    assert_eq!(n, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn chunk_sizes_do_not_change_the_events(chunks in proptest::collection::vec(1usize..5000, 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        speech::write_random_model(dir.path(), 16);
        let audio = speech::babble(16_000, 3.0, 9);
        let whole = events(&mut recognizer(dir.path()), &audio, &[audio.len()]);
        let chunked = events(&mut recognizer(dir.path()), &audio, &chunks);
        prop_assert_eq!(whole, chunked);
    }
}

fn edit_config(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn broken_speech_configs_are_refused() {
    let cases: Vec<(&str, Edit)> = vec![
        ("kind", Box::new(|v| v["kind"] = "music-nade".into())),
        (
            "no speech section",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("speech");
            }),
        ),
        (
            "window",
            Box::new(|v| v["speech"]["window"] = "hamming".into()),
        ),
        (
            "feature_std",
            Box::new(|v| v["speech"]["feature_std"] = serde_json::json!([1.0])),
        ),
        (
            "vocabulary",
            Box::new(|v| {
                v["speech"]["vocabulary"].as_array_mut().unwrap().pop();
            }),
        ),
        ("blank", Box::new(|v| v["speech"]["blank"] = 99.into())),
        ("n_fft", Box::new(|v| v["speech"]["n_fft"] = 128.into())),
        ("stack", Box::new(|v| v["speech"]["stack"] = 2.into())),
    ];
    for (what, edit) in cases {
        let dir = tempfile::tempdir().unwrap();
        speech::write_random_model(dir.path(), 8);
        edit_config(dir.path(), edit);
        match AcousticModel::load(dir.path(), None) {
            Err(SpeechError::NotSpeech { message, .. }) => {
                assert!(!message.is_empty(), "{what}")
            }
            Err(other) => panic!("{what}: unexpected error {other}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
}

#[test]
fn shared_weights_step_a_batch_as_each_stream_alone() {
    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model(dir.path(), 16);
    let model = AcousticModel::load(dir.path(), None).unwrap();
    let (n, v) = (model.step_size(), model.outputs());
    let mut batch = model.share(3);
    let mut single = model.share(1);
    assert_eq!(batch.max_batch(), 3);
    assert_eq!(batch.weight_bytes(), model.weight_bytes());
    let mut together: Vec<_> = (0..3).map(|_| model.new_state()).collect();
    let mut alone: Vec<_> = (0..3).map(|_| model.new_state()).collect();
    for t in 0..20 {
        let input: Vec<f32> = (0..3 * n)
            .map(|i| ((i * 7 + t * 13) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let mut out = vec![0.0; 3 * v];
        batch
            .step_batch_into(&mut together, &input, &mut out)
            .unwrap();
        for s in 0..3 {
            let mut one = vec![0.0; v];
            single
                .step_into(&mut alone[s], &input[s * n..(s + 1) * n], &mut one)
                .unwrap();
            assert_eq!(one, out[s * v..(s + 1) * v], "stream {s}, step {t}");
        }
    }
    // More streams than the batch holds is an error, not a panic.
    let mut four: Vec<_> = (0..4).map(|_| model.new_state()).collect();
    assert!(
        batch
            .step_batch_into(&mut four, &vec![0.0; 4 * n], &mut vec![0.0; 4 * v])
            .is_err()
    );
}

/// Blocks of prepared audio, then the end, or a device failure.
struct Blocks {
    audio: Vec<f32>,
    at: usize,
    fail_at_end: bool,
}

impl reprise::audio::BlockSource for Blocks {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn next_block(&mut self) -> Result<Option<&[f32]>, reprise::audio::AudioError> {
        if self.at >= self.audio.len() {
            return if self.fail_at_end {
                Err(reprise::audio::AudioError::NoDevice { direction: "input" })
            } else {
                Ok(None)
            };
        }
        let end = (self.at + 1000).min(self.audio.len());
        let block = &self.audio[self.at..end];
        self.at = end;
        Ok(Some(block))
    }
}

#[test]
fn the_live_loop_gives_what_a_file_gives_and_flushes_before_a_failure() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use reprise::speech::live::{LiveError, transcribe_live};

    let dir = tempfile::tempdir().unwrap();
    speech::write_random_model(dir.path(), 24);
    let audio = speech::babble(16_000, 6.0, 5);
    let expected = events(&mut recognizer(dir.path()), &audio, &[1000]);
    let finals = |fail_at_end: bool, quit: &AtomicBool, limit: Option<f64>| {
        let mut rec = recognizer(dir.path());
        let mut source = Blocks {
            audio: audio.clone(),
            at: 0,
            fail_at_end,
        };
        let mut out = Vec::new();
        let result = transcribe_live(&mut source, &mut rec, quit, limit, &mut |e, _| {
            if let Event::Final(u) = e {
                out.push(u.text().to_string());
            }
            true
        });
        (result, out, rec.seconds())
    };
    let texts: Vec<String> = expected
        .iter()
        .filter_map(|e| e.strip_prefix("final "))
        .map(|e| e[..e.find(" [").unwrap()].to_string())
        .collect();
    assert!(!texts.is_empty());
    let go_on = AtomicBool::new(false);
    let (result, out, _) = finals(false, &go_on, None);
    assert!(result.is_ok());
    assert_eq!(out, texts);
    // A device failure: what was heard is flushed as finals first, then the error.
    let (result, out, _) = finals(true, &go_on, None);
    assert!(matches!(result, Err(LiveError::Audio(_))), "{result:?}");
    assert_eq!(out, texts);
    // The quit flag stops after the block in hand; a limit after that much audio.
    let quit = AtomicBool::new(true);
    let (result, _, heard) = finals(false, &quit, None);
    assert!(
        result.is_ok() && heard <= 1000.0 / 16_000.0 + 1e-9,
        "{heard}"
    );
    quit.store(false, Ordering::Relaxed);
    let (_, _, heard) = finals(false, &quit, Some(2.0));
    assert!(
        (2.0..2.0 + 1000.0 / 16_000.0 + 1e-9).contains(&heard),
        "{heard}"
    );
}

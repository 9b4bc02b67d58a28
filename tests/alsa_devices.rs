//! Capture, playback and `reprise record` on the default (ALSA) host, through the
//! file-over-JACK route that `scripts/with-jack` configures: capture reads a known
//! raw file at the pace of a real JACK server, playback lands in a raw file.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reprise::audio::device::ConfigRequest;
use reprise::audio::resample::resample_all;
use reprise::audio::wav::quantize;
use reprise::audio::{AudioError, BlockSource, Capture, CaptureConfig, Playback, PlaybackConfig};

use common::{devices, lifted_signal, max_abs_diff, reprise, reprise_fails, stderr, test_signal};

/// Writes interleaved frames to a raw file in the given sample format.
fn write_raw(path: &Path, frames: &[Vec<f32>], format: cpal::SampleFormat) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for frame in frames {
        for &v in frame {
            match format {
                cpal::SampleFormat::I16 => out.write_all(&(quantize(v, 16) as i16).to_le_bytes()),
                cpal::SampleFormat::I32 => out.write_all(&quantize(v, 32).to_le_bytes()),
                cpal::SampleFormat::F32 => out.write_all(&v.to_le_bytes()),
                other => panic!("test writes no {other}"),
            }
            .unwrap();
        }
    }
}

/// What cpal hands the callback for a stored value, as f32.
fn as_delivered(v: f32, format: cpal::SampleFormat) -> f32 {
    match format {
        cpal::SampleFormat::I16 => quantize(v, 16) as f32 / 32768.0,
        cpal::SampleFormat::I32 => (quantize(v, 32) as f64 / 2_147_483_648.0) as f32,
        _ => v,
    }
}

fn capture_known_file(rate: u32, channels: usize, format: cpal::SampleFormat) {
    let _lock = devices();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mic.raw");
    // Longer than what is read: past its end the file plugin repeats stale data.
    let len = rate as usize * 4;
    let per_channel: Vec<Vec<f32>> = (0..channels)
        .map(|c| test_signal(rate, len, c as u32 + 1))
        .collect();
    let frames: Vec<Vec<f32>> = (0..len)
        .map(|i| per_channel.iter().map(|ch| ch[i]).collect())
        .collect();
    write_raw(&raw, &frames, format);
    let mono: Vec<f32> = frames
        .iter()
        .map(|f| f.iter().map(|&v| as_delivered(v, format)).sum::<f32>() / channels as f32)
        .collect();
    let reference = resample_all(&mono, rate, 16_000).unwrap();

    common::set_env("TEST_MIC_RAW", &raw);
    let config = CaptureConfig {
        rate: Some(16_000),
        device: ConfigRequest {
            rate: Some(rate),
            channels: Some(channels as u16),
            format: Some(format),
        },
        ..CaptureConfig::default()
    };
    let mut capture = Capture::start(&config).unwrap();
    assert_eq!(capture.device_rate(), rate);
    assert_eq!(capture.sample_rate(), 16_000);
    let wanted = 16_000 * 2;
    let mut got = Vec::with_capacity(wanted + 320);
    while got.len() < wanted {
        got.extend_from_slice(capture.next_block().unwrap().unwrap());
    }
    let overruns = capture
        .stats()
        .overrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    capture.stop();
    got.truncate(wanted);
    assert_eq!(overruns, 0);
    // Sample-accurate: the live path gives exactly the offline resampling of the file.
    let err = max_abs_diff(&got, &reference[..wanted]);
    assert!(
        err < 1e-5,
        "{rate} Hz {channels} ch {format}: max error {err}"
    );
}

#[test]
fn capture_i16_mono_48k_to_16k() {
    capture_known_file(48_000, 1, cpal::SampleFormat::I16);
}

#[test]
fn capture_f32_stereo_44k1_to_16k() {
    capture_known_file(44_100, 2, cpal::SampleFormat::F32);
}

#[test]
fn capture_i32_three_channels_at_16k() {
    capture_known_file(16_000, 3, cpal::SampleFormat::I32);
}

#[test]
fn playback_lands_bit_exact_at_the_device() {
    let _lock = devices();
    let dir = tempfile::tempdir().unwrap();
    let spk = dir.path().join("speaker.raw");
    common::set_env("TEST_SPK_RAW", &spk);
    let config = PlaybackConfig {
        device: ConfigRequest {
            rate: Some(48_000),
            channels: Some(1),
            format: Some(cpal::SampleFormat::F32),
        },
        ..PlaybackConfig::default()
    };
    let mut playback = Playback::start(&config).unwrap();
    // Starts away from zero so the start is easy to find in the file.
    let signal = lifted_signal(7);
    playback.write_all(&signal, Duration::from_secs(3)).unwrap();
    playback.drain(Duration::from_secs(5)).unwrap();
    let underruns = playback
        .stats()
        .underrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    playback.stop();
    let bytes = std::fs::read(&spk).unwrap();
    let written: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let start = written
        .iter()
        .position(|&v| v != 0.0)
        .expect("the signal reached the device");
    assert!(
        written.len() >= start + signal.len(),
        "only {} samples arrived",
        written.len() - start
    );
    let differing = written[start..start + signal.len()]
        .iter()
        .zip(&signal)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing,
        0,
        "{differing} of {} samples differ",
        signal.len()
    );
    assert_eq!(underruns, 0);
}

#[test]
fn record_command_writes_the_right_length_and_content() {
    let _lock = devices();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("mic.raw");
    let signal = test_signal(48_000, 48_000 * 4, 3);
    let frames: Vec<Vec<f32>> = signal.iter().map(|&v| vec![v]).collect();
    write_raw(&raw, &frames, cpal::SampleFormat::I16);
    let delivered: Vec<f32> = signal
        .iter()
        .map(|&v| as_delivered(v, cpal::SampleFormat::I16))
        .collect();
    let reference = resample_all(&delivered, 48_000, 16_000).unwrap();
    let out = dir.path().join("out.wav");
    let output = reprise(
        &[
            "record",
            "--seconds",
            "1.5",
            "-o",
            out.to_str().unwrap(),
            "--rate",
            "16000",
            "--device-rate",
            "48000",
            "--device-channels",
            "1",
            "--device-format",
            "i16",
        ],
        &[("TEST_MIC_RAW", &raw)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut reader = hound::WavReader::open(&out).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 16_000, 16)
    );
    let samples: Vec<i32> = reader.samples::<i16>().map(|s| s.unwrap() as i32).collect();
    assert_eq!(samples.len(), 24_000);
    let worst = samples
        .iter()
        .zip(&reference)
        .map(|(&s, &r)| (s - quantize(r, 16)).abs())
        .max()
        .unwrap();
    assert!(
        worst <= 1,
        "recorded samples differ from the reference by {worst} LSB"
    );
}

#[test]
fn unknown_device_lists_the_available_ones() {
    let _lock = devices();
    let err = Capture::start(&CaptureConfig {
        device_name: Some("no-such-microphone".into()),
        ..CaptureConfig::default()
    })
    .err()
    .unwrap();
    let AudioError::UnknownDevice { available, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(available.iter().any(|n| n == "default"), "{available:?}");
    let text = reprise_fails(
        &[
            "record",
            "--seconds",
            "1",
            "-o",
            "/dev/null",
            "--device",
            "no-such-microphone",
        ],
        &[("TEST_MIC_RAW", Path::new("/dev/zero"))],
    );
    assert!(
        text.contains("no audio input device named \"no-such-microphone\""),
        "{text}"
    );
    assert!(text.contains("\"default\""), "{text}");
}

#[test]
fn unsupported_configuration_says_what_is_supported() {
    let _lock = devices();
    let text = reprise_fails(
        &[
            "record",
            "--seconds",
            "1",
            "-o",
            "/dev/null",
            "--device-rate",
            "1000",
        ],
        &[("TEST_MIC_RAW", Path::new("/dev/zero"))],
    );
    assert!(
        text.contains("does not support 2 ch f32 1000 Hz; it supports: "),
        "{text}"
    );
    assert!(text.contains("f32 1–64 ch 4000–"), "{text}");
}

#[test]
fn bad_arguments_are_refused_cleanly() {
    let _lock = devices();
    let output = reprise(&["record", "--seconds", "-3", "-o", "/dev/null"], &[]);
    assert!(!output.status.success());
    assert!(!stderr(&output).contains("panicked"));
    let output = reprise(&["play", "/definitely/not/here.wav"], &[]);
    assert!(!output.status.success());
    assert!(!stderr(&output).contains("panicked"));
}

#[cfg(not(feature = "jack"))]
#[test]
fn jack_host_without_the_feature_is_explained() {
    let _lock = devices();
    let text = reprise_fails(&["--host", "jack", "devices"], &[]);
    assert!(text.contains("--features jack"), "{text}");
}

#[test]
fn devices_lists_inputs_outputs_and_midi() {
    let _lock = devices();
    let output = reprise(&["devices"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    for heading in ["Audio inputs:", "Audio outputs:", "MIDI"] {
        assert!(text.contains(heading), "{text}");
    }
    assert!(text.contains("default [default]: "), "{text}");
}

#[path = "common/music.rs"]
mod music;
#[path = "common/speech.rs"]
mod speech;

/// `reprise listen` on the microphone route gives the same finals as `reprise transcribe` on
/// the same audio as a file, with partials before each final.
#[test]
fn listen_transcribes_the_microphone_like_a_file() {
    let _lock = devices();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    speech::write_random_model(&model, 24);
    let audio = speech::babble(48_000, 8.0, 4);
    let raw = dir.path().join("mic.raw");
    let frames: Vec<Vec<f32>> = audio.iter().map(|&v| vec![v]).collect();
    write_raw(&raw, &frames, cpal::SampleFormat::I16);
    let wav = dir.path().join("same.wav");
    speech::write_wav(&wav, &audio, 48_000, 1);
    let m = model.to_str().unwrap();
    let live = reprise(
        &[
            "listen",
            "--model",
            m,
            "--format",
            "jsonl",
            "--seconds",
            "6.2",
            "--device-rate",
            "48000",
            "--device-channels",
            "1",
            "--device-format",
            "i16",
        ],
        &[("TEST_MIC_RAW", &raw)],
    );
    let lines = jsonl_lines(live);
    let file = reprise(
        &[
            "transcribe",
            wav.to_str().unwrap(),
            "--model",
            m,
            "--format",
            "jsonl",
        ],
        &[],
    );
    assert!(file.status.success(), "{}", stderr(&file));
    let offline: serde_json::Value = serde_json::from_slice(&file.stdout).unwrap();
    // Bursts of sound at 0, 2 and 4 s end in utterances at about 1.5, 3.5 and 5.5 s.
    let want: Vec<&str> = offline["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["end"].as_f64().unwrap() < 5.0)
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert!(want.len() >= 2, "{offline}");
    let finals: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "final").collect();
    let got: Vec<&str> = finals
        .iter()
        .take(want.len())
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, want, "{lines:#?}");
    let mut seen_partial = false;
    for l in &lines {
        match l["type"].as_str().unwrap() {
            "partial" => seen_partial = true,
            _ => {
                assert!(seen_partial, "a final came without a partial before it");
                seen_partial = false;
            }
        }
    }
}

/// The spoken samples (`samples/speech/`) one after another, each followed by `gap` seconds
/// of silence, as 16 kHz i16 bytes; with each sentence's text, start and end of speech.
/// The JSON lines a successful run printed.
fn jsonl_lines(output: std::process::Output) -> Vec<serde_json::Value> {
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first `count` spoken samples with 1.5 s gaps, written as the microphone's raw file.
fn spoken_microphone(count: usize) -> (tempfile::TempDir, PathBuf, Vec<(String, f64, f64)>) {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, utts) = spoken_samples(1.5, count);
    let raw = dir.path().join("mic.raw");
    std::fs::write(&raw, bytes).unwrap();
    (dir, raw, utts)
}

fn spoken_samples(gap: f64, count: usize) -> (Vec<u8>, Vec<(String, f64, f64)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/speech");
    let list = std::fs::read_to_string(dir.join("transcripts.tsv")).unwrap();
    let mut pcm: Vec<i16> = vec![0; 8000];
    let mut utts = Vec::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()).take(count) {
        let (file, text) = line.split_once('\t').unwrap();
        let mut r = hound::WavReader::open(dir.join(file)).unwrap();
        let a: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        let loud = |s: &i16| s.unsigned_abs() > 330;
        let first = a.iter().position(loud).unwrap_or(0);
        let last = a.iter().rposition(loud).unwrap_or(0);
        let at = pcm.len() as f64;
        utts.push((
            text.to_owned(),
            (at + first as f64) / 16_000.0,
            (at + last as f64) / 16_000.0,
        ));
        pcm.extend_from_slice(&a);
        pcm.extend(std::iter::repeat_n(0, (gap * 16_000.0) as usize));
    }
    // The file plugin repeats stale data past the end: leave room.
    pcm.extend(std::iter::repeat_n(0, 16_000 * 20));
    (pcm.iter().flat_map(|s| s.to_le_bytes()).collect(), utts)
}

const LIVE_ARGS: [&str; 8] = [
    "listen",
    "--format",
    "jsonl",
    "--device-rate",
    "16000",
    "--device-channels",
    "1",
    "--device-format",
];

/// Live transcription with the bundled model: spoken sentences played into the paced
/// microphone route each give a final that covers them, and each shows a partial while it is
/// still being spoken. (Accuracy is `tests/speech_accuracy.rs`'s concern.)
#[test]
fn listen_shows_partials_while_each_sentence_is_spoken() {
    let _lock = devices();
    let (_dir, raw, utts) = spoken_microphone(4);
    let seconds = format!("{:.1}", utts.last().unwrap().2 + 1.5);
    let mut args = LIVE_ARGS.to_vec();
    args.extend(["i16", "--seconds", &seconds]);
    let lines = jsonl_lines(reprise(&args, &[("TEST_MIC_RAW", &raw)]));
    for (text, start, end) in &utts {
        let covered = lines.iter().any(|f| {
            f["type"] == "final"
                && f["start"].as_f64().unwrap() < *end
                && f["end"].as_f64().unwrap() > *start
                && !f["text"].as_str().unwrap().is_empty()
        });
        assert!(covered, "no final for {text:?}: {lines:#?}");
        let early = lines.iter().any(|l| {
            l["type"] == "partial"
                && l["time"].as_f64().unwrap() > *start
                && l["time"].as_f64().unwrap() < *end
                && !l["text"].as_str().unwrap().is_empty()
        });
        assert!(early, "no partial while {text:?} was spoken: {lines:#?}");
    }
}

/// Ctrl-C while a sentence is being spoken: `reprise listen` prints that sentence's final
/// (the utterance in progress is flushed) and exits cleanly.
#[test]
fn listen_flushes_the_utterance_in_progress_on_ctrl_c() {
    use std::io::BufRead;
    let _lock = devices();
    let (_dir, raw, utts) = spoken_microphone(3);
    let mut args = LIVE_ARGS.to_vec();
    args.push("i16");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(&args)
        .env("TEST_MIC_RAW", &raw)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // Interrupt a little after the middle of the second sentence.
    let (_, start, end) = &utts[1];
    let at = start + 0.6 * (end - start);
    let mut lines = Vec::new();
    let mut sent = false;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let time = v["time"].as_f64().unwrap_or(0.0);
        lines.push(v);
        if !sent && time >= at {
            let pid = child.id().to_string();
            let ok = std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap();
            assert!(ok.success());
            sent = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        sent,
        "the stream never reached the second sentence: {lines:#?}"
    );
    assert!(status.success(), "{status:?}");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "final", "{lines:#?}");
    assert!(
        last["start"].as_f64().unwrap() < *end && last["end"].as_f64().unwrap() > *start,
        "the last final is not the interrupted sentence: {lines:#?}"
    );
    assert!(!last["text"].as_str().unwrap().is_empty(), "{lines:#?}");
    // Nothing from the third sentence: the stream stopped where it was interrupted.
    assert!(
        lines
            .iter()
            .all(|l| l["time"].as_f64().unwrap_or(0.0) < utts[2].1)
    );
}

//! Audio and MIDI over real JACK ports (build with `--features jack`, run through
//! `scripts/with-jack`): capture from JACK ports, playback checked at a receiving
//! port, MIDI between two midir ports, and devices that vanish or refuse.
#![cfg(feature = "jack")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reprise::audio::device::{ConfigRequest, HostChoice};
use reprise::audio::resample::resample_all;
use reprise::audio::{BlockSource, Capture, CaptureConfig, Playback, PlaybackConfig};
use reprise::music::live::{MidiError, MidiIn, MidiOut, PortSpec};

use common::{devices, lifted_signal, max_abs_diff, reprise_fails};

/// JACK ports whose names contain `part`.
fn jack_ports(part: &str) -> Vec<String> {
    let out = Command::new("jack_lsp").output().expect("jack_lsp runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(part))
        .map(str::to_owned)
        .collect()
}

fn jack_connect(from: &str, to: &str) {
    let status = Command::new("jack_connect")
        .args([from, to])
        .status()
        .unwrap();
    assert!(status.success(), "jack_connect {from} {to}");
}

/// Plays `signal` on a JACK output wired straight into a JACK capture at `rate`,
/// and returns what the capture delivered over `seconds`.
fn loop_through_jack(signal: &[f32], rate: Option<u32>, seconds: f32) -> Vec<f32> {
    let pid = std::process::id();
    let mut capture = Capture::start(&CaptureConfig {
        host: HostChoice::Jack,
        rate,
        ..CaptureConfig::default()
    })
    .unwrap();
    let mut playback = Playback::start(&PlaybackConfig {
        host: HostChoice::Jack,
        ring_seconds: 4.0,
        device: ConfigRequest::default(),
        ..PlaybackConfig::default()
    })
    .unwrap();
    assert_eq!(playback.rate(), 48_000);
    let outs = jack_ports(&format!("cpal_client_{pid}_out:"));
    let ins = jack_ports(&format!("cpal_client_{pid}_in:"));
    assert!(
        !outs.is_empty() && !ins.is_empty(),
        "ports: {outs:?} {ins:?}"
    );
    assert_eq!(outs.len(), ins.len(), "ports: {outs:?} {ins:?}");
    // Every output channel carries the signal; wire each into the matching input.
    for (from, to) in outs.iter().zip(&ins) {
        jack_connect(from, to);
    }
    // Let the connection settle, then play.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(200) {
        capture.next_block().unwrap();
    }
    playback.write_all(signal, Duration::from_secs(3)).unwrap();
    let wanted = (capture.sample_rate() as f32 * seconds) as usize;
    let mut got = Vec::with_capacity(wanted);
    while got.len() < wanted {
        got.extend_from_slice(capture.next_block().unwrap().unwrap());
    }
    let overruns = capture
        .stats()
        .overrun_frames
        .load(std::sync::atomic::Ordering::Relaxed);
    playback.stop();
    capture.stop();
    assert_eq!(overruns, 0);
    got
}

#[test]
fn jack_playback_arrives_bit_exact_at_a_jack_capture() {
    let _lock = devices();
    let signal = lifted_signal(11);
    let got = loop_through_jack(&signal, None, 2.0);
    let start = got.iter().position(|&v| v != 0.0).expect("signal arrived");
    assert!(got.len() >= start + signal.len());
    let differing = got[start..start + signal.len()]
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
}

#[test]
fn jack_capture_resampled_matches_the_reference() {
    let _lock = devices();
    let signal = lifted_signal(5);
    let got = loop_through_jack(&signal, Some(16_000), 2.5);
    // The signal starts after an unknown number of silent frames at 48 kHz. Find the
    // offset to within a few samples at 16 kHz, then the exact 48 kHz offset whose
    // reference (silence + signal, resampled the same way) matches the capture.
    let coarse = got
        .iter()
        .position(|v| v.abs() > 0.05)
        .expect("signal arrived");
    let mut best = (f32::MAX, 0);
    for lead in (coarse.saturating_sub(8) * 3)..(coarse + 8) * 3 {
        let mut padded = vec![0.0f32; lead];
        padded.extend_from_slice(&signal);
        let reference = resample_all(&padded, 48_000, 16_000).unwrap();
        let n = reference.len().min(got.len()) - 40;
        let err = max_abs_diff(&got[..n], &reference[..n]);
        if err < best.0 {
            best = (err, lead);
        }
    }
    assert!(
        best.0 < 1e-5,
        "best match at lead {} has max error {}",
        best.1,
        best.0
    );
}

#[test]
fn midi_notes_pass_between_two_jack_ports_in_order() {
    let _lock = devices();
    let mut out = MidiOut::open(
        &PortSpec::Virtual("reprise-test-src".into()),
        "reprise-test-src",
    )
    .unwrap();
    let mut input = MidiIn::open(
        &PortSpec::Named("reprise-test-src".into()),
        "reprise-test-sink",
        256,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut sent = Vec::new();
    for note in 60u8..72 {
        let on = [0x90, note, 100];
        let off = [0x80, note, 0];
        out.send(&on).unwrap();
        sent.push(on);
        std::thread::sleep(Duration::from_millis(20));
        out.send(&off).unwrap();
        sent.push(off);
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = Vec::new();
    while got.len() < sent.len() && Instant::now() < deadline {
        match input.try_recv() {
            Some(e) => got.push(e),
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let bytes: Vec<Vec<u8>> = got.iter().map(|e| e.bytes().to_vec()).collect();
    let want: Vec<Vec<u8>> = sent.iter().map(|m| m.to_vec()).collect();
    assert_eq!(bytes, want);
    let stamps: Vec<u64> = got.iter().map(|e| e.timestamp_us).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    // 23 gaps of at least 20 ms were slept between the first and last message.
    let span = stamps[stamps.len() - 1] - stamps[0];
    assert!(
        span >= 23 * 20_000 * 3 / 4,
        "timestamps span only {span} µs"
    );
    assert_eq!(
        input
            .stats()
            .dropped_full
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    input.close();
    out.close();
}

#[test]
fn unknown_midi_port_lists_the_available_ones() {
    let _lock = devices();
    let out = MidiOut::open(
        &PortSpec::Virtual("reprise-listed".into()),
        "reprise-listed",
    )
    .unwrap();
    let err = MidiIn::open(&PortSpec::Named("no-such-port".into()), "reprise-test", 16)
        .err()
        .unwrap();
    let MidiError::UnknownPort { available, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        available.iter().any(|p| p.contains("reprise-listed")),
        "{available:?}"
    );
    assert!(err.to_string().contains("reprise-listed"), "{err}");
    out.close();
}

#[test]
fn jack_refuses_a_rate_other_than_the_servers() {
    let _lock = devices();
    let text = reprise_fails(
        &[
            "--host",
            "jack",
            "record",
            "--seconds",
            "1",
            "-o",
            "/dev/null",
            "--device-rate",
            "44100",
        ],
        &[],
    );
    assert!(
        text.contains("does not support") && text.contains("48000 Hz"),
        "{text}"
    );
}

#[test]
fn no_jack_server_is_a_clear_error() {
    let _lock = devices();
    reprise_fails(
        &[
            "--host",
            "jack",
            "record",
            "--seconds",
            "1",
            "-o",
            "/dev/null",
        ],
        &[("JACK_DEFAULT_SERVER", Path::new("reprise-no-such-server"))],
    );
}

#[test]
fn a_server_that_vanishes_mid_recording_is_reported_and_audio_kept() {
    let _lock = devices();
    let name = format!("reprise-vanish-{}", std::process::id());
    let server = common::start_jack_server(&name);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reprise"))
        .args(["--host", "jack", "record", "--seconds", "30", "-o"])
        .arg(&out)
        .env("JACK_DEFAULT_SERVER", &name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    common::stop_jack_server(server);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("reprise hung after the JACK server went away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&text.stderr);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("failed mid-stream") || text.contains("delivered no audio"),
        "{text}"
    );
    // What was recorded before the failure is in a valid WAV file.
    let reader = hound::WavReader::open(&out).unwrap();
    assert!(
        reader.duration() > 16_000,
        "kept {} frames",
        reader.duration()
    );
}

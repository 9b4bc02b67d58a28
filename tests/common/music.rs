//! Small music models with random weights and seed MIDI files, made in the tests.
#![allow(dead_code)]

use std::path::Path;

use midly::num::{u4, u7, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// `n` values uniform in `offset ± scale` from a xorshift generator.
pub fn random(n: usize, seed: &mut u64, scale: f32, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale + offset
        })
        .collect()
}

/// Writes a `music-nade` model with random weights into `dir`: `keys` keys from MIDI note
/// `low`, `encoding` "roll" or "onset-roll", `spq` frames per quarter note.
pub fn write_random_model(dir: &Path, encoding: &str, low: u8, keys: usize, spq: u32) {
    write_random_model_sized(dir, encoding, low, keys, spq, 24, 16);
}

/// As [`write_random_model`], with an LSTM of 2 × `h` units and a NADE of `hn` hidden units.
pub fn write_random_model_sized(
    dir: &Path,
    encoding: &str,
    low: u8,
    keys: usize,
    spq: u32,
    h: usize,
    hn: usize,
) {
    let n = if encoding == "roll" { keys } else { 2 * keys };
    let mut seed = 0xC0FFEE;
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for k in 0..2 {
        let inp = if k == 0 { n } else { h };
        t.push((
            format!("lstm.weight_ih_l{k}"),
            vec![4 * h, inp],
            random(4 * h * inp, &mut seed, 0.5, 0.0),
        ));
        t.push((
            format!("lstm.weight_hh_l{k}"),
            vec![4 * h, h],
            random(4 * h * h, &mut seed, 0.5, 0.0),
        ));
        t.push((
            format!("lstm.bias_ih_l{k}"),
            vec![4 * h],
            random(4 * h, &mut seed, 0.5, 0.0),
        ));
        t.push((
            format!("lstm.bias_hh_l{k}"),
            vec![4 * h],
            random(4 * h, &mut seed, 0.5, 0.0),
        ));
    }
    t.push((
        "nade.W".into(),
        vec![hn, n],
        random(hn * n, &mut seed, 1.0, 0.0),
    ));
    t.push((
        "nade.V".into(),
        vec![n, hn],
        random(n * hn, &mut seed, 1.0, 0.0),
    ));
    t.push((
        "nade.b_proj.weight".into(),
        vec![n, h],
        random(n * h, &mut seed, 1.0, 0.0),
    ));
    // A negative bias so that a few keys sound in each frame, not half of them.
    t.push((
        "nade.b_proj.bias".into(),
        vec![n],
        random(n, &mut seed, 0.5, -1.5),
    ));
    t.push((
        "nade.c_proj.weight".into(),
        vec![hn, h],
        random(hn * h, &mut seed, 1.0, 0.0),
    ));
    t.push((
        "nade.c_proj.bias".into(),
        vec![hn],
        random(hn, &mut seed, 0.5, 0.0),
    ));
    write_tensors(dir, t);
    let config = serde_json::json!({
        "format": "reprise-model", "version": 1, "kind": "music-nade", "weight_format": "f32",
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": n, "hidden_size": h, "num_layers": 2},
            {"type": "nade", "name": "nade", "visible": n, "hidden": hn, "cond_size": h}
        ],
        "music": {"encoding": encoding, "low_note": low, "keys": keys, "steps_per_quarter": spq,
                  "input": "previous-frame"}
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// Note lengths of the event models written here, in sixteenths.
pub const EVENT_DURATIONS: [u32; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 24, 28, 32, 40, 48, 64,
];

/// Writes a `music-events` model with random weights into `dir`: note tokens for `keys` keys
/// from MIDI note `low`, an LSTM of 2 × `h` units.
pub fn write_random_events_model(dir: &Path, low: u8, keys: usize, h: usize) {
    let vocab = 1 + 16 + keys + EVENT_DURATIONS.len();
    let n = vocab + 2 * keys + 12 + 20;
    let mut seed = 0xBEEF;
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for k in 0..2 {
        let inp = if k == 0 { n } else { h };
        for (name, shape) in [
            (format!("lstm.weight_ih_l{k}"), vec![4 * h, inp]),
            (format!("lstm.weight_hh_l{k}"), vec![4 * h, h]),
            (format!("lstm.bias_ih_l{k}"), vec![4 * h]),
            (format!("lstm.bias_hh_l{k}"), vec![4 * h]),
        ] {
            let len = shape.iter().product();
            t.push((name, shape, random(len, &mut seed, 0.5, 0.0)));
        }
    }
    t.push((
        "out.weight".into(),
        vec![vocab, h],
        random(vocab * h, &mut seed, 1.0, 0.0),
    ));
    t.push((
        "out.bias".into(),
        vec![vocab],
        random(vocab, &mut seed, 0.5, 0.0),
    ));
    write_tensors(dir, t);
    let config = serde_json::json!({
        "format": "reprise-model", "version": 1, "kind": "music-events", "weight_format": "f32",
        "layers": [
            {"type": "lstm", "name": "lstm", "input_size": n, "hidden_size": h, "num_layers": 2},
            {"type": "linear", "name": "out", "in_features": h, "out_features": vocab}
        ],
        "music": {"encoding": "events", "low_note": low, "keys": keys, "steps_per_quarter": 4,
                  "shifts": 16, "durations": EVENT_DURATIONS,
                  "inputs": ["token", "sounding", "used", "pitch_classes", "metric"]}
    });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
}

/// A seed: (start tick, length in ticks, key, velocity, channel).
pub type SeedNote = (u32, u32, u8, u8, u8);

/// A two-track MIDI file at `ppq` with 4/4 and 100 BPM holding `notes`.
pub fn write_seed(path: &Path, ppq: u16, notes: &[SeedNote]) {
    let mut events: Vec<(u32, u8, TrackEventKind<'static>)> = Vec::new();
    for &(start, len, key, vel, ch) in notes {
        let (channel, key) = (u4::new(ch), u7::new(key));
        events.push((
            start,
            1,
            TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOn {
                    key,
                    vel: u7::new(vel),
                },
            },
        ));
        events.push((
            start + len,
            0,
            TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOff {
                    key,
                    vel: u7::new(0),
                },
            },
        ));
    }
    events.sort_by_key(|e| (e.0, e.1));
    let mut track = Vec::new();
    let mut last = 0;
    for (tick, _, kind) in events {
        track.push(TrackEvent {
            delta: u28::new(tick - last),
            kind,
        });
        last = tick;
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let meta = vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(600_000))),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        },
    ];
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(ppq))),
        tracks: vec![meta, track],
    };
    let mut out = Vec::new();
    smf.write_std(&mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

/// A note read back from a MIDI file: (start tick, end tick, key, velocity, channel).
pub type ReadNote = (u64, u64, u8, u8, u8);

/// All notes of a MIDI file in start order, plus its ticks per quarter note.
pub fn read_notes(path: &Path) -> (u16, Vec<ReadNote>) {
    let bytes = std::fs::read(path).unwrap();
    let smf = Smf::parse(&bytes).expect("a valid MIDI file");
    let Timing::Metrical(ppq) = smf.header.timing else {
        panic!("metrical timing expected")
    };
    let mut out = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        let mut open: Vec<Option<(u64, u8)>> = vec![None; 16 * 128];
        for ev in track {
            tick += ev.delta.as_int() as u64;
            if let TrackEventKind::Midi { channel, message } = ev.kind {
                let ch = channel.as_int();
                match message {
                    MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                        open[ch as usize * 128 + key.as_int() as usize] =
                            Some((tick, vel.as_int()));
                    }
                    MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                        if let Some((start, vel)) =
                            open[ch as usize * 128 + key.as_int() as usize].take()
                        {
                            out.push((start, tick, key.as_int(), vel, ch));
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(
            open.iter().all(|o| o.is_none()),
            "a note was never switched off"
        );
    }
    out.sort();
    (ppq.as_int(), out)
}

/// Writes `model.safetensors` (F32) with the given tensors into `dir`.
pub fn write_tensors(dir: &Path, t: Vec<(String, Vec<usize>, Vec<f32>)>) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = t
        .into_iter()
        .map(|(name, shape, v)| {
            (
                name,
                shape,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, b)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
}

/// A single-track MIDI file at `ppq` in `numerator`/2^`power` time: a time signature, then
/// the notes (key, length in ticks) one after another.
pub fn seed_bytes(ppq: u16, numerator: u8, power: u8, notes: &[(u8, u32)]) -> Vec<u8> {
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, power, 24, 8)),
    }];
    for &(key, len) in notes {
        let (channel, key) = (u4::new(0), u7::new(key));
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOn {
                    key,
                    vel: u7::new(90),
                },
            },
        });
        track.push(TrackEvent {
            delta: u28::new(len),
            kind: TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOff {
                    key,
                    vel: u7::new(0),
                },
            },
        });
    }
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(ppq))),
        tracks: vec![track],
    };
    let mut out = Vec::new();
    smf.write_std(&mut out).unwrap();
    out
}

/// The hostile seed of a bug report: four notes, each 2^27 ticks long, at `ppq` (78 bytes at
/// ppq 1 made the daemon grow to 22 GB).
pub fn hostile_seed(ppq: u16) -> Vec<u8> {
    seed_bytes(
        ppq,
        4,
        2,
        &[(60, 1 << 27), (64, 1 << 27), (67, 1 << 27), (72, 1 << 27)],
    )
}

//! How often continuations pass the musical checks of `reprise music judge`, on seeds cut from
//! the valid splits of the JSB Chorales and Nottingham sets and from Nottingham's top line alone
//! (monophonic melodies), next to the same pieces' real continuations.
//!
//! ```sh
//! cargo bench --bench music_judge -- [--model DIR] [--temperatures 0.8,1.0,1.2] [--top-p P]
//!     [--max-voices seed|off|N] [--seeds N] [--bars 8] [--write DIR]
//! ```
//!
//! A seed is a piece's first 4 bars (4/4 on the set's grid: quarter notes for JSB, eighth notes
//! for Nottingham), a key held over several frames being one note; only pieces with at least
//! 4 + `--bars` bars are used, so that each has a real continuation to compare with. Each line
//! gives the pass rate of one kind of seed and the failures per check; the last lines are
//! `judge kind=<k> temperature=<t> pass=<rate>` and the generation time per bar.

use std::path::{Path, PathBuf};
use std::time::Instant;

use reprise::music::continuation::{ContinueOptions, ScaleChoice, VoiceLimit, continue_seed};
use reprise::music::judge::judge;
use reprise::music::model::MusicModel;
use reprise::music::sample::Sampling;
use reprise::music::seed::{Note, Seed};

const PPQ: u64 = 480;
const SEED_BARS: u64 = 4;

struct Args {
    model: PathBuf,
    data: PathBuf,
    temperatures: Vec<f32>,
    top_p: f32,
    voices: VoiceLimit,
    seeds: usize,
    bars: u64,
    write: Option<PathBuf>,
}

fn parse_args() -> Args {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        model: root.join("models/music-default"),
        data: root.join("models/training/data/polyphonic"),
        temperatures: vec![1.0],
        top_p: Sampling::default().top_p,
        voices: VoiceLimit::Seed,
        seeds: usize::MAX,
        bars: 8,
        write: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => args.model = value().into(),
            "--data" => args.data = value().into(),
            "--temperatures" => {
                args.temperatures = value()
                    .split(',')
                    .map(|t| t.parse().expect("temperatures are numbers"))
                    .collect()
            }
            "--top-p" => args.top_p = value().parse().expect("--top-p is a number"),
            "--max-voices" => args.voices = value().parse().expect("--max-voices seed|off|N"),
            "--seeds" => args.seeds = value().parse().expect("--seeds is a count"),
            "--bars" => args.bars = value().parse().expect("--bars is a count"),
            "--write" => args.write = Some(value().into()),
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    args
}

/// Notes of piano-roll frames of `ticks` each, a key held over consecutive frames one note.
fn notes_of_frames(frames: &[Vec<u8>], ticks: u64, top_only: bool) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut open: Vec<Option<u64>> = vec![None; 128];
    let empty = Vec::new();
    for t in 0..=frames.len() {
        let frame = frames.get(t).unwrap_or(&empty);
        let top = frame.iter().max().copied();
        let on = |k: u8| frame.contains(&k) && (!top_only || Some(k) == top);
        for k in 0..128u8 {
            match (open[k as usize], on(k)) {
                (Some(s), false) => {
                    notes.push(Note {
                        start: s * ticks,
                        end: t as u64 * ticks,
                        key: k,
                        velocity: 80,
                        channel: 0,
                    });
                    open[k as usize] = None;
                }
                (None, true) => open[k as usize] = Some(t as u64),
                _ => {}
            }
        }
    }
    notes.sort_by_key(|n| (n.start, n.key));
    notes
}

/// The notes starting in [from, to), cut at `to` and moved to start at `from` = 0 when `shift`.
fn window(notes: &[Note], from: u64, to: u64, shift: bool) -> Vec<Note> {
    notes
        .iter()
        .filter(|n| n.start >= from && n.start < to)
        .map(|n| Note {
            start: n.start - if shift { from } else { 0 },
            end: n.end.min(to) - if shift { from } else { 0 },
            ..*n
        })
        .collect()
}

fn seed_of(notes: Vec<Note>) -> Seed {
    let mut seed = Seed::empty(PPQ as u16);
    seed.end_tick = SEED_BARS * 4 * PPQ;
    seed.notes = notes;
    seed
}

struct Kind {
    name: &'static str,
    file: &'static str,
    ticks: u64,
    top_only: bool,
}

const KINDS: [Kind; 3] = [
    Kind {
        name: "jsb",
        file: "JSB_Chorales.json",
        ticks: PPQ,
        top_only: false,
    },
    Kind {
        name: "nottingham",
        file: "Nottingham.json",
        ticks: PPQ / 2,
        top_only: false,
    },
    Kind {
        name: "nottingham-top",
        file: "Nottingham.json",
        ticks: PPQ / 2,
        top_only: true,
    },
];

fn load_valid(path: &Path) -> Vec<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    serde_json::from_value(doc["valid"].clone()).expect("a valid split of pieces")
}

#[derive(Default)]
struct Tally {
    seeds: usize,
    passed: usize,
    failed: [usize; 6],
}

impl Tally {
    fn add(&mut self, checks: &[reprise::music::judge::Check; 6]) {
        self.seeds += 1;
        if checks.iter().all(|c| c.passed) {
            self.passed += 1;
        }
        for (f, c) in self.failed.iter_mut().zip(checks) {
            *f += usize::from(!c.passed);
        }
    }

    fn line(&self) -> String {
        let names = ["density", "voices", "key", "range", "silence", "invention"];
        let fails: Vec<String> = names
            .iter()
            .zip(self.failed)
            .map(|(n, f)| format!("{n} {f}"))
            .collect();
        format!(
            "{}/{} pass ({:.0}%); failures: {}",
            self.passed,
            self.seeds,
            100.0 * self.passed as f64 / self.seeds.max(1) as f64,
            fails.join(", ")
        )
    }
}

fn main() {
    let args = parse_args();
    let mut model = MusicModel::load(&args.model, None)
        .unwrap_or_else(|e| panic!("loading {}: {e}", args.model.display()));
    let bar = 4 * PPQ;
    let (mut gen_secs, mut gen_bars) = (0.0f64, 0u64);
    let mut summary = Vec::new();
    for kind in &KINDS {
        let pieces = load_valid(&args.data.join(kind.file));
        let mut seeds = Vec::new();
        for frames in &pieces {
            let notes = notes_of_frames(frames, kind.ticks, kind.top_only);
            let piece_bars = (frames.len() as u64 * kind.ticks) / bar;
            if piece_bars < SEED_BARS + args.bars || seeds.len() >= args.seeds {
                continue;
            }
            let seed = seed_of(window(&notes, 0, SEED_BARS * bar, false));
            let real = window(
                &notes,
                SEED_BARS * bar,
                (SEED_BARS + args.bars) * bar,
                false,
            );
            if !seed.notes.is_empty() {
                seeds.push((seed, real));
            }
        }
        let mut real_tally = Tally::default();
        for (seed, real) in &seeds {
            let start = seed.padded_end();
            if let Ok(j) = judge(seed, real, start, start + args.bars * bar) {
                real_tally.add(&j.checks());
            }
        }
        println!(
            "{:<15} real continuations: {}",
            kind.name,
            real_tally.line()
        );
        for &t in &args.temperatures {
            let mut tally = Tally::default();
            for (i, (seed, _)) in seeds.iter().enumerate() {
                let opts = ContinueOptions {
                    bars: args.bars as u32,
                    sampling: Sampling {
                        temperature: t,
                        top_p: args.top_p,
                    },
                    scale: ScaleChoice::Off,
                    max_voices: args.voices.max(),
                    fit_voices: args.voices.fit(),
                    seed: 1 + i as u64,
                };
                let clock = Instant::now();
                let cont = continue_seed(&mut model, seed, &opts).expect("continuation");
                gen_secs += clock.elapsed().as_secs_f64();
                gen_bars += args.bars;
                let j = judge(seed, &cont.notes, cont.start_tick, cont.end_tick).expect("judge");
                tally.add(&j.checks());
                if let Some(dir) = &args.write {
                    std::fs::create_dir_all(dir).expect("output folder");
                    let midi = reprise::music::continuation::write_midi(seed, &cont, false);
                    let name = format!("{}-{i:03}-t{t}.mid", kind.name);
                    std::fs::write(dir.join(name), midi).expect("writing a MIDI file");
                }
            }
            println!("{:<15} temperature {t}: {}", kind.name, tally.line());
            summary.push(format!(
                "judge kind={} temperature={t} pass={:.3} seeds={} real_pass={:.3}",
                kind.name,
                tally.passed as f64 / tally.seeds.max(1) as f64,
                tally.seeds,
                real_tally.passed as f64 / real_tally.seeds.max(1) as f64
            ));
        }
    }
    for line in summary {
        println!("{line}");
    }
    println!(
        "generation ms_per_bar={:.2} bars={gen_bars}",
        1e3 * gen_secs / gen_bars.max(1) as f64
    );
}

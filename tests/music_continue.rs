//! `reprise continue` end to end, on small models with random weights written by the test
//! (the behaviour checked here does not depend on what a model has learned).

mod common;
#[path = "common/music.rs"]
mod music;

use std::path::PathBuf;

use common::{reprise, reprise_fails, stderr};
use music::{SeedNote, read_notes, write_random_events_model, write_random_model, write_seed};

const PPQ: u16 = 480;
const BAR: u64 = 4 * PPQ as u64;

/// Two bars of a C-major tune with varied velocities, a chord and a drum part.
fn seed_notes() -> Vec<SeedNote> {
    let mut notes = vec![
        (0, 480, 60, 100, 0),
        (480, 480, 64, 60, 0),
        (960, 240, 67, 90, 0),
        (1200, 240, 65, 70, 0),
        (1440, 480, 64, 80, 0),
        (1920, 960, 60, 110, 0),
        (1920, 960, 64, 105, 0),
        (2880, 960, 62, 75, 0),
    ];
    for beat in 0..8 {
        notes.push((beat * 480, 60, 36 + (beat % 2) as u8 * 2, 100, 9));
    }
    notes
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(encoding: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        if encoding == "events" {
            write_random_events_model(&model, 36, 60, 24);
        } else {
            write_random_model(&model, encoding, 36, 60, 4);
        }
        write_seed(&dir.path().join("seed.mid"), PPQ, &seed_notes());
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `reprise continue seed.mid --model model -o OUT extra…` and returns OUT.
    fn run(&self, out: &str, extra: &[&str]) -> PathBuf {
        let out_path = self.path(out);
        let model = self.path("model");
        let seed = self.path("seed.mid");
        let mut args = vec![
            "continue",
            seed.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = reprise(&args, &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        out_path
    }
}

fn pitched(notes: &[(u64, u64, u8, u8, u8)]) -> Vec<(u64, u64, u8, u8, u8)> {
    notes.iter().copied().filter(|n| n.4 != 9).collect()
}

#[test]
fn the_output_starts_with_the_seed_and_adds_the_requested_bars() {
    for encoding in ["roll", "onset-roll", "events"] {
        let s = Setup::new(encoding);
        let out = s.run("out.mid", &["--bars", "3", "--seed", "5"]);
        let (ppq, notes) = read_notes(&out);
        assert_eq!(ppq, PPQ);
        let seed: Vec<_> = seed_notes()
            .iter()
            .map(|&(st, len, k, v, c)| (st as u64, (st + len) as u64, k, v, c))
            .collect();
        // Every seed note is there unchanged (drums included).
        for n in &seed {
            assert!(notes.contains(n), "{encoding}: seed note {n:?} missing");
        }
        let new: Vec<_> = notes.iter().filter(|n| !seed.contains(n)).collect();
        assert!(!new.is_empty(), "{encoding}: no continuation notes");
        for n in &new {
            assert!(
                n.0 >= 2 * BAR && n.1 <= 5 * BAR,
                "{encoding}: {n:?} outside bars 3..5"
            );
            assert_ne!(
                n.4, 9,
                "{encoding}: a note was generated on the drum channel"
            );
            assert!(
                (36..96).contains(&n.2),
                "{encoding}: key {} outside the model",
                n.2
            );
        }
        // Velocities follow the seed's profile: the mean velocity of its pitched notes at the
        // same sixteenth of the bar, or their overall mean where it has none.
        let pitched_seed: Vec<_> = seed.iter().filter(|n| n.4 != 9).collect();
        let mean = |v: Vec<u32>| (v.iter().sum::<u32>() / v.len() as u32) as u8;
        let overall = mean(pitched_seed.iter().map(|n| n.3 as u32).collect());
        for n in &new {
            let pos = (n.0 % BAR) / (PPQ as u64 / 4);
            let here: Vec<u32> = pitched_seed
                .iter()
                .filter(|m| (m.0 % BAR) / (PPQ as u64 / 4) == pos)
                .map(|m| m.3 as u32)
                .collect();
            let expected = if here.is_empty() { overall } else { mean(here) };
            assert_eq!(n.3, expected, "{encoding}: velocity of {n:?}");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_file_and_another_seed_another() {
    let s = Setup::new("onset-roll");
    let a = std::fs::read(s.run("a.mid", &["--seed", "7", "--bars", "4"])).unwrap();
    let b = std::fs::read(s.run("b.mid", &["--seed", "7", "--bars", "4"])).unwrap();
    let c = std::fs::read(s.run("c.mid", &["--seed", "8", "--bars", "4"])).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn scale_and_voice_limits_hold() {
    for encoding in ["roll", "events"] {
        let s = Setup::new(encoding);
        let out = s.run(
            "scale.mid",
            &["--scale", "D:major", "--bars", "8", "--temperature", "1.5"],
        );
        let (_, notes) = read_notes(&out);
        let d_major = [2, 4, 6, 7, 9, 11, 1];
        for n in pitched(&notes).iter().filter(|n| n.0 >= 2 * BAR) {
            assert!(
                d_major.contains(&(n.2 % 12)),
                "{encoding}: {n:?} is not in D major"
            );
        }
        let out = s.run(
            "mono.mid",
            &["--max-voices", "1", "--bars", "8", "--temperature", "1.5"],
        );
        assert_monophonic(encoding, &out);
        // Without a limit the seed's chord lets two voices sound at once; with `off` more may.
        for (limit, most) in [("seed", 2), ("3", 3)] {
            let out = s.run(
                "limit.mid",
                &["--max-voices", limit, "--bars", "8", "--temperature", "1.5"],
            );
            let (_, notes) = read_notes(&out);
            let new: Vec<_> = pitched(&notes)
                .into_iter()
                .filter(|n| n.0 >= 2 * BAR)
                .collect();
            for n in &new {
                let at_once = new.iter().filter(|m| m.0 <= n.0 && n.0 < m.1).count();
                assert!(
                    at_once <= most,
                    "{encoding} --max-voices {limit}: {at_once} at once"
                );
            }
        }
    }
}

fn assert_monophonic(what: &str, midi: &std::path::Path) {
    let (_, notes) = read_notes(midi);
    let new: Vec<_> = pitched(&notes)
        .into_iter()
        .filter(|n| n.0 >= 2 * BAR)
        .collect();
    assert!(!new.is_empty(), "{what}: no notes");
    for pair in new.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "{what}: notes overlap: {pair:?}");
    }
}

#[test]
fn a_monophonic_seed_gets_a_monophonic_continuation_by_default() {
    for encoding in ["roll", "onset-roll", "events"] {
        let s = Setup::new(encoding);
        let tune: Vec<SeedNote> = [60u8, 62, 64, 65, 67, 65, 64, 62]
            .iter()
            .enumerate()
            .map(|(i, &k)| (i as u32 * 480, 480, k, 90, 0))
            .collect();
        write_seed(&s.path("seed.mid"), PPQ, &tune);
        let out = s.run("mono.mid", &["--bars", "8", "--temperature", "1.5"]);
        assert_monophonic(encoding, &out);
    }
}

#[test]
fn only_continuation_variations_plot_and_scratch() {
    let s = Setup::new("onset-roll");
    let plot = s.path("roll.png");
    let out = s.run(
        "only.mid",
        &[
            "--only-continuation",
            "--bars",
            "2",
            "--variations",
            "2",
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    assert!(!out.exists(), "with variations the files are numbered");
    for k in 1..=2 {
        let (_, notes) = read_notes(&s.path(&format!("only-{k}.mid")));
        assert!(
            notes.iter().all(|n| n.4 != 9 && n.1 <= 2 * BAR),
            "{notes:?}"
        );
    }
    for k in 1..=2 {
        let png = std::fs::read(s.path(&format!("roll-{k}.png"))).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "plot {k} is not a PNG");
    }
    // From scratch: no seed file.
    let out = s.path("scratch.mid");
    let model = s.path("model");
    let output = reprise(
        &[
            "continue",
            "--model",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--bars",
            "2",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let (_, notes) = read_notes(&out);
    assert!(notes.iter().all(|n| n.1 <= 2 * BAR));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let s = Setup::new("roll");
    let model = s.path("model");
    let out = s.path("x.mid");
    let broken = s.path("broken.mid");
    std::fs::write(&broken, b"MThd\x00\x00\x00\x06\x00\x01").unwrap();
    let m = model.to_str().unwrap();
    let o = out.to_str().unwrap();
    let text = reprise_fails(
        &["continue", broken.to_str().unwrap(), "--model", m, "-o", o],
        &[],
    );
    assert!(text.contains("not a valid MIDI file"), "{text}");
    let text = reprise_fails(
        &["continue", "/nonexistent/seed.mid", "--model", m, "-o", o],
        &[],
    );
    assert!(text.contains("cannot read"), "{text}");
    let seed = s.path("seed.mid");
    let sd = seed.to_str().unwrap();
    let text = reprise_fails(&["continue", sd, "--model", "/nonexistent", "-o", o], &[]);
    assert!(text.contains("config.json"), "{text}");
    let text = reprise_fails(
        &["continue", sd, "--model", m, "-o", o, "--temperature", "0"],
        &[],
    );
    assert!(text.contains("--temperature"), "{text}");
    let output = reprise(
        &["continue", sd, "--model", m, "-o", o, "--scale", "H:major"],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad --scale is a usage error"
    );
    assert!(stderr(&output).contains("unknown scale"));
    assert!(
        !out.exists(),
        "nothing is written when the arguments are wrong"
    );
}

#[test]
fn hostile_truncated_and_odd_seeds_give_clear_errors_or_music() {
    let s = Setup::new("onset-roll");
    let m = s.path("model");
    let m = m.to_str().unwrap();
    let out = s.path("hostile-out.mid");
    let o = out.to_str().unwrap();
    // Seeds far too long: refused at once with the limit named, nothing written.
    for ppq in [1, 480] {
        let seed = s.path(&format!("hostile-{ppq}.mid"));
        std::fs::write(&seed, music::hostile_seed(ppq)).unwrap();
        let text = reprise_fails(
            &["continue", seed.to_str().unwrap(), "--model", m, "-o", o],
            &[],
        );
        assert!(text.contains("limit") || text.contains("at most"), "{text}");
        assert!(!out.exists());
    }
    // A truncated seed is refused, as `reprise render` refuses it.
    let whole = std::fs::read(s.path("seed.mid")).unwrap();
    let cut = s.path("cut.mid");
    std::fs::write(&cut, &whole[..whole.len() - 5]).unwrap();
    let text = reprise_fails(
        &["continue", cut.to_str().unwrap(), "--model", m, "-o", o],
        &[],
    );
    assert!(text.contains("truncated"), "{text}");
    let wav = s.path("cut.wav");
    let text = reprise_fails(
        &["render", cut.to_str().unwrap(), "-o", wav.to_str().unwrap()],
        &[],
    );
    assert!(text.contains("truncated"), "{text}");
    // ppq 1 in 1/8 and 3/8 (bars shorter than a tick): continued on whole bars.
    for numerator in [1, 3] {
        let seed = s.path("tiny.mid");
        std::fs::write(
            &seed,
            music::seed_bytes(1, numerator, 3, &[(60, 1), (62, 2)]),
        )
        .unwrap();
        let run = reprise(
            &[
                "continue",
                seed.to_str().unwrap(),
                "--model",
                m,
                "-o",
                o,
                "--bars",
                "2",
            ],
            &[],
        );
        assert!(run.status.success(), "{}", stderr(&run));
        let (ppq, notes) = music::read_notes(&out);
        let bar = ppq as u64 * 4 * numerator as u64 / 8;
        assert_eq!(
            bar * 8,
            ppq as u64 * 4 * numerator as u64,
            "whole bars: ppq {ppq}"
        );
        // The seed's notes, in the new resolution: a quarter note, then a half note.
        assert_eq!(notes[0].0..notes[0].1, 0..ppq as u64);
        assert_eq!(notes[1].0..notes[1].1, ppq as u64..3 * ppq as u64);
        // The continuation starts at the first bar line after the seed and lasts 2 bars.
        let seed_end = (3 * ppq as u64).div_ceil(bar) * bar;
        assert!(
            notes[2..]
                .iter()
                .all(|n| n.0 >= seed_end && n.1 <= seed_end + 2 * bar)
        );
    }
}

#[test]
fn continue_can_render_the_result_in_the_same_run() {
    let s = Setup::new("onset-roll");
    let wav = s.path("out.wav");
    s.run("r.mid", &["--bars", "2", "--render", wav.to_str().unwrap()]);
    let reader = hound::WavReader::open(&wav).expect("a valid WAV file");
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.bits_per_sample), (44_100, 16));
    let samples: Vec<i16> = reader.into_samples::<i16>().map(|v| v.unwrap()).collect();
    // Seed (2 bars) + 2 bars at 100 BPM = 9.6 s, plus the 2 s tail, stereo.
    let seconds = samples.len() as f64 / spec.channels as f64 / 44_100.0;
    assert!((seconds - 11.6).abs() < 0.2, "{seconds} s");
    assert!(
        samples.iter().any(|v| v.unsigned_abs() > 1000),
        "the render is silent"
    );
    let text = reprise_fails(
        &[
            "continue",
            s.path("seed.mid").to_str().unwrap(),
            "--model",
            s.path("model").to_str().unwrap(),
            "-o",
            s.path("x.mid").to_str().unwrap(),
            "--render",
            s.path("x.wav").to_str().unwrap(),
            "--soundfont",
            "/nonexistent.sf2",
        ],
        &[],
    );
    assert!(text.contains("nonexistent.sf2"), "{text}");
}

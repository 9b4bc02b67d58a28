//! Offline rendering: pitch, timing, silence, instruments, WAV output and errors, through
//! the library and the `reprise render` command. SoundFont tests use Debian's
//! TimGM6mb.sf2, which `scripts/setup` installs.

mod common;

use std::path::{Path, PathBuf};

use midly::num::{u4, u7, u14, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};
use realfft::RealFftPlanner;
use reprise::music::midi_file::{MidiSong, parse_midi};
use reprise::render::{self, Instruments, Level, RenderOptions, soundfont};

const TIMGM6MB: &str = "/usr/share/sounds/sf2/TimGM6mb.sf2";
const RATE: u32 = 44_100;
const TPQ: u16 = 480;

fn timgm6mb() -> Instruments {
    assert!(
        Path::new(TIMGM6MB).exists(),
        "{TIMGM6MB} is missing: run scripts/setup (it installs timgm6mb-soundfont)"
    );
    Instruments::SoundFont(soundfont::load_soundfont(Path::new(TIMGM6MB)).expect("loads"))
}

// ---- MIDI building -------------------------------------------------------------

/// A track event `delta` ticks after the previous one.
type Ev = (u32, TrackEventKind<'static>);

fn midi(channel: u8, message: MidiMessage) -> TrackEventKind<'static> {
    TrackEventKind::Midi {
        channel: u4::new(channel),
        message,
    }
}

fn on(channel: u8, key: u8, vel: u8) -> TrackEventKind<'static> {
    midi(
        channel,
        MidiMessage::NoteOn {
            key: u7::new(key),
            vel: u7::new(vel),
        },
    )
}

fn off(channel: u8, key: u8) -> TrackEventKind<'static> {
    midi(
        channel,
        MidiMessage::NoteOff {
            key: u7::new(key),
            vel: u7::new(0),
        },
    )
}

fn program(channel: u8, program: u8) -> TrackEventKind<'static> {
    midi(
        channel,
        MidiMessage::ProgramChange {
            program: u7::new(program),
        },
    )
}

fn controller(channel: u8, cc: u8, value: u8) -> TrackEventKind<'static> {
    midi(
        channel,
        MidiMessage::Controller {
            controller: u7::new(cc),
            value: u7::new(value),
        },
    )
}

fn tempo(bpm: f64) -> TrackEventKind<'static> {
    TrackEventKind::Meta(MetaMessage::Tempo(u24::new((60e6 / bpm) as u32)))
}

/// A format-1 file (480 ticks per quarter note) as bytes.
fn smf_bytes(tracks: Vec<Vec<Ev>>) -> Vec<u8> {
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(TPQ))),
        tracks: tracks
            .into_iter()
            .map(|t| {
                t.into_iter()
                    .map(|(delta, kind)| TrackEvent {
                        delta: u28::new(delta),
                        kind,
                    })
                    .collect()
            })
            .collect(),
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writes");
    bytes
}

fn song(tracks: Vec<Vec<Ev>>) -> MidiSong {
    parse_midi(&smf_bytes(tracks)).expect("parses")
}

/// At 120 bpm, 960 ticks are one second.
const SECOND: u32 = 960;

/// One note on `channel` from 0.5 s to 1.5 s, after `setup` events at time 0.
fn one_note(channel: u8, key: u8, setup: Vec<TrackEventKind<'static>>) -> MidiSong {
    let mut track: Vec<Ev> = setup.into_iter().map(|k| (0, k)).collect();
    track.push((SECOND / 2, on(channel, key, 100)));
    track.push((SECOND, off(channel, key)));
    song(vec![track])
}

// ---- Rendering and analysis ----------------------------------------------------

fn dry(threads: usize) -> RenderOptions {
    RenderOptions {
        sample_rate: RATE,
        level: Level::GainDb(0.0),
        reverb: false,
        tail_seconds: 1.0,
        threads,
    }
}

/// Renders and returns the left channel.
fn render_left(song: &MidiSong, instruments: &Instruments, options: &RenderOptions) -> Vec<f32> {
    let (stereo, summary) = render::render_to_vec(song, instruments, options).expect("renders");
    assert_eq!(stereo.len() as u64, summary.frames * 2);
    stereo.chunks(2).map(|f| f[0]).collect()
}

fn seconds(s: f64) -> usize {
    (s * RATE as f64).round() as usize
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Magnitude spectrum of `x` under a Hann window.
fn spectrum(x: &[f32]) -> Vec<f32> {
    let n = x.len();
    let mut input: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let w = 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos();
            v * w
        })
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut out = fft.make_output_vec();
    fft.process(&mut input, &mut out).expect("fft");
    out.iter().map(|c| c.norm()).collect()
}

/// Frequency of the strongest spectral peak, refined by parabolic interpolation.
fn peak_hz(x: &[f32]) -> f64 {
    let mag = spectrum(x);
    let k = (1..mag.len() - 1)
        .max_by(|&a, &b| mag[a].total_cmp(&mag[b]))
        .expect("bins");
    let (a, b, c) = (mag[k - 1] as f64, mag[k] as f64, mag[k + 1] as f64);
    let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
    (k as f64 + offset) * RATE as f64 / x.len() as f64
}

/// Cosine similarity of two magnitude spectra up to 8 kHz.
fn similarity(a: &[f32], b: &[f32]) -> f32 {
    let (sa, sb) = (spectrum(a), spectrum(b));
    let top = 8_000 * a.len() / RATE as usize;
    let dot: f32 = sa[..top].iter().zip(&sb[..top]).map(|(x, y)| x * y).sum();
    let norm = |s: &[f32]| s[..top].iter().map(|v| v * v).sum::<f32>().sqrt();
    dot / (norm(&sa) * norm(&sb))
}

/// First sample above `threshold` at or after `from`.
fn onset(x: &[f32], from: usize, threshold: f32) -> usize {
    from + x[from..]
        .iter()
        .position(|v| v.abs() > threshold)
        .expect("a note starts")
}

// ---- Pitch, duration, silence ----------------------------------------------------

#[test]
fn builtin_note_has_the_right_pitch_duration_and_silence_around_it() {
    // Every General MIDI family plays A4 (69) at 440 Hz.
    for prog in [0u8, 16, 24, 32, 40, 56, 73, 80, 88] {
        let x = render_left(
            &one_note(0, 69, vec![program(0, prog)]),
            &Instruments::BuiltIn,
            &dry(1),
        );
        assert_eq!(x.len(), seconds(1.5 + 1.0), "song (1.5 s) plus the tail");
        assert!(
            x[..seconds(0.5)].iter().all(|&v| v == 0.0),
            "program {prog}: silence before the note"
        );
        let held = &x[seconds(0.6)..seconds(0.6) + 16_384];
        let hz = peak_hz(held);
        assert!((hz - 440.0).abs() < 3.0, "program {prog}: peak at {hz} Hz");
        // Sounds for the whole second it is held, and stops after its release.
        let quarter = |s: f64| rms(&x[seconds(s)..seconds(s + 0.25)]);
        assert!(
            quarter(1.2) > 2e-4,
            "program {prog}: still sounding at 1.2 s"
        );
        assert!(
            quarter(2.25) < quarter(1.2) * 0.01,
            "program {prog}: released by 2.25 s"
        );
    }
}

#[test]
fn soundfont_note_has_the_right_pitch_duration_and_silence_around_it() {
    let font = timgm6mb();
    // Flute (73) and ocarina (79): steady tones with a strong fundamental.
    for prog in [73u8, 79] {
        let x = render_left(&one_note(0, 69, vec![program(0, prog)]), &font, &dry(2));
        assert!(peak(&x[..seconds(0.5)]) == 0.0, "silence before the note");
        let hz = peak_hz(&x[seconds(0.7)..seconds(0.7) + 16_384]);
        assert!((hz - 440.0).abs() < 3.0, "program {prog}: peak at {hz} Hz");
        let quarter = |s: f64| rms(&x[seconds(s)..seconds(s + 0.25)]);
        assert!(quarter(1.2) > 1e-3, "still sounding at 1.2 s");
        assert!(quarter(2.2) < quarter(1.2) * 0.01, "released by 2.2 s");
    }
}

#[test]
fn silence_between_notes() {
    // Two short notes 2 s apart: nothing in between once the first has died away.
    let track = vec![
        (0, on(0, 60, 100)),
        (SECOND / 4, off(0, 60)),
        (2 * SECOND, on(0, 64, 100)),
        (SECOND / 4, off(0, 64)),
    ];
    let s = song(vec![track]);
    for instruments in [Instruments::BuiltIn, timgm6mb()] {
        let x = render_left(&s, &instruments, &dry(2));
        assert!(peak(&x[..seconds(0.25)]) > 0.01, "first note sounds");
        assert!(
            peak(&x[seconds(1.5)..seconds(2.25)]) < 1e-4,
            "silent gap: {}",
            peak(&x[seconds(1.5)..seconds(2.25)])
        );
        assert!(peak(&x[seconds(2.25)..seconds(2.5)]) > 0.01, "second note");
    }
}

#[test]
fn pitch_bend_moves_the_pitch() {
    // Full bend up with the default range of 2 semitones: A4 → B4 (493.9 Hz).
    let bend = midi(
        0,
        MidiMessage::PitchBend {
            bend: midly::PitchBend(u14::new(16383)),
        },
    );
    let s = one_note(0, 69, vec![program(0, 73), bend]);
    for instruments in [Instruments::BuiltIn, timgm6mb()] {
        let x = render_left(&s, &instruments, &dry(1));
        let hz = peak_hz(&x[seconds(0.7)..seconds(0.7) + 16_384]);
        assert!((hz - 493.9).abs() < 4.0, "peak at {hz} Hz");
    }
}

#[test]
fn volume_and_velocity_scale_the_level() {
    for instruments in [Instruments::BuiltIn, timgm6mb()] {
        let level = |setup: Vec<TrackEventKind<'static>>| {
            let x = render_left(&one_note(0, 69, setup), &instruments, &dry(1));
            rms(&x[seconds(0.6)..seconds(1.4)])
        };
        let full = level(vec![program(0, 73), controller(0, 7, 127)]);
        let half_volume = level(vec![program(0, 73), controller(0, 7, 64)]);
        let low_expression = level(vec![program(0, 73), controller(0, 11, 40)]);
        assert!(half_volume < full * 0.5, "CC7: {half_volume} vs {full}");
        assert!(
            low_expression < full * 0.3,
            "CC11: {low_expression} vs {full}"
        );
    }
}

// ---- Instruments -------------------------------------------------------------------

#[test]
fn drums_and_program_changes_sound_different() {
    for instruments in [Instruments::BuiltIn, timgm6mb()] {
        let render = |channel: u8, setup| {
            let x = render_left(&one_note(channel, 60, setup), &instruments, &dry(1));
            x[seconds(0.5)..seconds(0.5) + 8192].to_vec()
        };
        let piano = render(0, vec![program(0, 0)]);
        let strings = render(0, vec![program(0, 48)]);
        let drums = render(9, vec![]);
        let piano_again = render(0, vec![program(0, 0)]);
        assert_eq!(piano, piano_again, "rendering is deterministic");
        let ps = similarity(&piano, &strings);
        let pd = similarity(&piano, &drums);
        assert!(ps < 0.9, "piano vs strings similarity {ps}");
        assert!(pd < 0.9, "piano vs drums similarity {pd}");
        assert!(peak(&drums) > 0.01, "the drum sounds");
    }
}

// ---- Timing --------------------------------------------------------------------------

#[test]
fn tempo_changes_move_onsets_to_the_right_sample() {
    // 120 bpm for 2 beats (1 s), then 60 bpm: beats 2, 3 and 4 are at 1 s, 2 s, 3 s.
    // The tempo map sits in its own track, as in format-1 files.
    let conductor = vec![(0, tempo(120.0)), (2 * 480, tempo(60.0))];
    let notes = vec![
        (0, on(0, 72, 110)),
        (120, off(0, 72)),
        (3 * 480 - 120, on(0, 72, 110)),
        (120, off(0, 72)),
        (480 - 120, on(0, 72, 110)),
        (120, off(0, 72)),
    ];
    let s = song(vec![conductor, notes]);
    let times: Vec<f64> = s
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.message,
                reprise::music::midi_file::ChannelMessage::NoteOn { .. }
            )
        })
        .map(|e| e.seconds)
        .collect();
    assert_eq!(times, vec![0.0, 2.0, 3.0]);

    // The built-in synthesizer starts notes on their exact sample (its saw wave is 0
    // at the first one); rustysynth on its 64-sample block grid.
    let expected = [0, seconds(2.0), seconds(3.0)];
    for (instruments, slack) in [(Instruments::BuiltIn, 1), (timgm6mb(), 64 + 32)] {
        let x = render_left(&s, &instruments, &dry(2));
        let mut from = 0;
        for &want in &expected {
            let got = onset(&x, from, 1e-5);
            assert!(
                got >= want && got <= want + slack,
                "onset at sample {got}, expected {want} (+{slack})"
            );
            from = want + seconds(0.9);
            assert!(peak(&x[got + seconds(0.6)..from]) < 1e-3, "silence after");
        }
    }
}

// ---- Threads, levels -------------------------------------------------------------

fn busy_song() -> MidiSong {
    let mut tracks = Vec::new();
    for (channel, prog) in [(0u8, 0u8), (1, 33), (2, 48), (9, 0)] {
        let mut t: Vec<Ev> = vec![
            (0, program(channel, prog)),
            (0, controller(channel, 91, 80)),
        ];
        if channel == 2 {
            t.push((0, controller(2, 93, 60)));
        }
        for i in 0..24u32 {
            let key = if channel == 9 {
                [36, 38, 42, 46][i as usize % 4]
            } else {
                48 + (i * 5 % 24) as u8
            };
            t.push((if i == 0 { 0 } else { 120 }, on(channel, key, 90)));
            t.push((200, off(channel, key)));
        }
        tracks.push(t);
    }
    song(tracks)
}

#[test]
fn two_threads_give_the_same_samples_as_one() {
    let s = busy_song();
    for instruments in [Instruments::BuiltIn, timgm6mb()] {
        let options = |threads| RenderOptions {
            reverb: true,
            ..dry(threads)
        };
        let (one, _) = render::render_to_vec(&s, &instruments, &options(1)).unwrap();
        let (two, _) = render::render_to_vec(&s, &instruments, &options(2)).unwrap();
        assert!(peak(&one) > 0.01);
        assert!(one == two, "one thread and two differ");
    }
}

#[test]
fn normalize_sets_the_peak_and_gain_scales() {
    let s = busy_song();
    let font = timgm6mb();
    let normalized = RenderOptions {
        level: Level::Normalize { peak_dbfs: -1.0 },
        ..dry(2)
    };
    let (x, summary) = render::render_to_vec(&s, &font, &normalized).unwrap();
    assert!((render::dbfs(peak(&x)) + 1.0).abs() < 0.01);
    assert!((render::dbfs(summary.peak) + 1.0).abs() < 0.01);
    let (a, _) = render::render_to_vec(&s, &font, &dry(2)).unwrap();
    let louder = RenderOptions {
        level: Level::GainDb(6.0),
        ..dry(2)
    };
    let (b, _) = render::render_to_vec(&s, &font, &louder).unwrap();
    let ratio = peak(&b) / peak(&a);
    assert!(
        (ratio - 10f32.powf(0.3)).abs() < 0.01,
        "+6 dB: ratio {ratio}"
    );
}

// ---- The command line ------------------------------------------------------------

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writes");
    path
}

fn busy_song_file(dir: &Path) -> PathBuf {
    let tracks = vec![vec![
        (0, program(0, 0)),
        (0, on(0, 60, 100)),
        (0, on(9, 36, 100)),
        (SECOND / 2, off(0, 60)),
        (0, off(9, 36)),
    ]];
    write_file(dir, "song.mid", &smf_bytes(tracks))
}

#[test]
fn cli_writes_valid_wav_in_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = busy_song_file(dir.path());
    for (format, bits, float) in [("16", 16, false), ("24", 24, false), ("f32", 32, true)] {
        for font in [None, Some(TIMGM6MB)] {
            let out = dir.path().join(format!("out-{format}.wav"));
            let mut args = vec![
                "render",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--rate",
                "48000",
                "--format",
                format,
                "--tail",
                "0.5",
            ];
            if let Some(f) = font {
                args.extend(["--soundfont", f]);
            }
            let output = common::reprise(&args, &[]);
            assert!(output.status.success(), "{}", common::stderr(&output));
            assert!(common::stderr(&output).contains("Rendered"));
            let reader = hound::WavReader::open(&out).expect("a readable WAV file");
            let spec = reader.spec();
            assert_eq!(spec.channels, 2);
            assert_eq!(spec.sample_rate, 48_000);
            assert_eq!(spec.bits_per_sample, bits);
            assert_eq!(spec.sample_format == hound::SampleFormat::Float, float);
            // 0.5 s of song + 0.5 s of tail.
            assert_eq!(reader.duration(), 48_000);
            let (mono, _) = reprise::audio::wav::read_wav(&out, None).unwrap();
            assert!(peak(&mono) > 0.01, "format {format}: not silent");
        }
    }
}

#[test]
fn cli_normalize_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let input = busy_song_file(dir.path());
    let out = dir.path().join("n.wav");
    let output = common::reprise(
        &[
            "render",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--normalize",
            "--no-reverb",
            "--format",
            "f32",
            "--threads",
            "1",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", common::stderr(&output));
    let (mono, rate) = reprise::audio::wav::read_wav(&out, None).unwrap();
    assert_eq!(rate, 44_100);
    // Mono is the mean of two channels, so its peak is at most the stereo peak.
    assert!(
        render::dbfs(peak(&mono)) <= -0.99,
        "{}",
        render::dbfs(peak(&mono))
    );
    assert!(render::dbfs(peak(&mono)) > -7.0);
    // --gain and --normalize exclude each other; a bad rate is a usage error.
    for bad in [vec!["--gain", "-3", "--normalize"], vec!["--rate", "22050"]] {
        let mut args = vec![
            "render",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(bad);
        let output = common::reprise(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{}", common::stderr(&output));
    }
}

#[test]
fn cli_reports_broken_inputs_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = busy_song_file(dir.path());
    let out = dir.path().join("out.wav");
    let out = out.to_str().unwrap();

    let garbage = write_file(dir.path(), "garbage.mid", b"this is not a MIDI file at all");
    let text = common::reprise_fails(&["render", garbage.to_str().unwrap(), "-o", out], &[]);
    assert!(
        text.contains("garbage.mid") && text.contains("not a valid MIDI file"),
        "{text}"
    );

    let bytes = std::fs::read(&good).unwrap();
    let truncated = write_file(dir.path(), "cut.mid", &bytes[..bytes.len() / 2]);
    let text = common::reprise_fails(&["render", truncated.to_str().unwrap(), "-o", out], &[]);
    assert!(text.contains("cut.mid"), "{text}");

    let missing = dir.path().join("missing.mid");
    let text = common::reprise_fails(&["render", missing.to_str().unwrap(), "-o", out], &[]);
    assert!(text.contains("missing.mid"), "{text}");

    let good = good.to_str().unwrap();
    // Each failing SoundFont: its error names the file and says what is wrong.
    let font_fails = |font: &Path, expected: &str| {
        let font = font.to_str().unwrap();
        let text = common::reprise_fails(&["render", good, "-o", out, "--soundfont", font], &[]);
        let name = Path::new(font).file_name().unwrap().to_str().unwrap();
        assert!(text.contains(name) && text.contains(expected), "{text}");
    };
    font_fails(Path::new("/nonexistent/font.sf2"), "cannot read SoundFont");
    let not_sf2 = write_file(
        dir.path(),
        "bad.sf2",
        b"RIFF\x10\x00\x00\x00sfbkLIST garbage",
    );
    font_fails(&not_sf2, "not a valid SoundFont");
    let real = std::fs::read(TIMGM6MB).expect("TimGM6mb.sf2 (scripts/setup installs it)");
    let cut = write_file(dir.path(), "cut.sf2", &real[..real.len() / 3]);
    font_fails(&cut, "not a valid SoundFont");

    let text = common::reprise_fails(&["render", good, "-o", "/nonexistent/dir/out.wav"], &[]);
    assert!(text.contains("out.wav"), "{text}");
}

//! `reprise jam` over real JACK MIDI (build with `--features jack`, run through
//! `scripts/with-jack`): the test plays the DAW, sending clock, a call and control changes,
//! and checks the response's timing, length and that no note is left hanging; plus clear
//! errors for an unknown port and for a JACK server that disappears.
#![cfg(feature = "jack")]

mod common;
#[path = "common/daw.rs"]
mod daw;
#[path = "common/music.rs"]
mod music;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reprise::music::live::{MidiEvent, MidiIn, MidiOut, PortSpec};
use reprise::rt::time::now_us;

use common::{devices, reprise_fails};

const BPM: f64 = 160.0;
/// One quarter note at 160 BPM in microseconds.
const QUARTER: f64 = 60e6 / BPM;
const BAR: f64 = 4.0 * QUARTER;
const SIXTEENTH: f64 = QUARTER / 4.0;

/// A running `reprise jam` with its stderr lines.
struct Jam {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Where `reprise serve` listens.
    addr: Option<String>,
}

impl Jam {
    fn start(model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Jam {
        let mut args = vec!["jam", "--model", model.to_str().unwrap()];
        args.extend_from_slice(extra);
        Jam::spawn(&args, env)
    }

    /// `reprise serve` with this configuration file and nothing but the live jam.
    fn serve(config: &Path) -> Jam {
        let config = config.to_str().unwrap();
        let mut jam = Jam::spawn(
            &["serve", "--config", config, "--listen", "127.0.0.1:0"],
            &[],
        );
        jam.addr = Some(serve::listening_address(&mut jam.child));
        jam
    }

    /// `GET path` from `reprise serve`: the body.
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(self.addr.as_deref().unwrap()).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).unwrap();
        reply.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Jam {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reprise"));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Plain log lines (`key=value`), without colour codes.
            .env("NO_COLOR", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("reprise runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Jam {
            child,
            lines,
            addr: None,
        }
    }

    /// Waits for a stderr line containing `part`; all lines seen so far on failure.
    fn wait_for(&mut self, part: &str, timeout: Duration) -> Result<String, String> {
        let mut seen = String::new();
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(part) => return Ok(line),
                Ok(line) => seen += &(line + "\n"),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit code and the remaining stderr.
    fn terminate(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        let rest: String = self.lines.iter().map(|l| l + "\n").collect();
        (status.code(), rest)
    }
}

impl Drop for Jam {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    music::write_random_model(dir.path(), "onset-roll", 36, 60, 4);
    dir
}

/// The DAW's ports: reprise reads "daw out" and answers on "daw in".
fn daw_ports(tag: &str) -> (MidiOut, MidiIn) {
    let out = MidiOut::open(
        &PortSpec::Virtual(format!("{tag} out")),
        &format!("{tag}-src"),
    )
    .unwrap();
    let input = MidiIn::open(
        &PortSpec::Virtual(format!("{tag} in")),
        &format!("{tag}-sink"),
        8192,
    )
    .unwrap();
    (out, input)
}

/// A call in bar 0: four notes on the beats, the last released at beat 3.5. With a bar of
/// silence ending the call at beat 7.5, the response starts at bar 2.
fn call(t0: u64) -> Vec<(u64, Vec<u8>)> {
    let mut plan = Vec::new();
    for (beat, key) in [60u8, 64, 67, 72].iter().enumerate() {
        let on = t0 + (beat as f64 * QUARTER) as u64;
        plan.push((on, vec![0x90, *key, 100]));
        plan.push((on + (QUARTER / 2.0) as u64, vec![0x80, *key, 0]));
    }
    plan
}

/// Note-ons as (time, key), checked to lie after `from`.
fn note_ons(events: &[MidiEvent]) -> Vec<(u64, u8)> {
    events
        .iter()
        .filter(|e| matches!(e.bytes(), [s, _, v] if s & 0xF0 == 0x90 && *v > 0))
        .map(|e| (e.received_us, e.bytes()[1]))
        .collect()
}

/// Grid tolerance: 5 ms beyond what JACK's periods add (the clock arrives up to one period
/// late, and the DAW's callback runs once a period, so it receives each answer up to a
/// period before the frame it was written at).
fn tolerance_us() -> f64 {
    5_000.0 + 2.0 * daw::jack_period_us()
}

/// The sixteenth grid of the clock the DAW sent: bar 0 at `t0`, shifted locally by how late
/// the DAW's ticks really went out (averaged over a beat either side).
struct Grid {
    t0: u64,
    ticks: Vec<(u64, u64)>,
}

impl Grid {
    /// The nearest sixteenth to `t` and how far `t` is from it, in microseconds.
    fn nearest(&self, t: u64) -> (i64, f64) {
        let six = ((t as f64 - self.t0 as f64) / SIXTEENTH).round() as i64;
        let k = (six.max(0) * 6) as usize;
        let window = &self.ticks
            [k.saturating_sub(24).min(self.ticks.len() - 1)..(k + 25).min(self.ticks.len())];
        let late = window
            .iter()
            .map(|(want, sent)| *sent as f64 - *want as f64)
            .sum::<f64>()
            / window.len().max(1) as f64;
        let g = self.t0 as f64 + six as f64 * SIXTEENTH + late;
        (six, t as f64 - g)
    }

    /// The (sixteenth, key) pattern of note-ons in `[from, from + len)` sixteenths, the
    /// sixteenths counted from `from`.
    fn pattern(&self, ons: &[(u64, u8)], from: i64, len: i64) -> Vec<(i64, u8)> {
        let mut out: Vec<(i64, u8)> = ons
            .iter()
            .map(|&(t, key)| (self.nearest(t).0, key))
            .filter(|(six, _)| *six >= from && *six < from + len)
            .map(|(six, key)| (six - from, key))
            .collect();
        out.sort();
        out
    }

    fn assert_on_grid(&self, ons: &[(u64, u8)]) {
        let tol = tolerance_us();
        let errors: Vec<f64> = ons.iter().map(|&(t, _)| self.nearest(t).1).collect();
        let lo = errors.iter().copied().fold(f64::MAX, f64::min);
        let hi = errors.iter().copied().fold(f64::MIN, f64::max);
        eprintln!(
            "{} note-ons, off the grid by {:.2} to {:.2} ms (tolerance {:.1} ms)",
            ons.len(),
            lo / 1e3,
            hi / 1e3,
            tol / 1e3
        );
        for (&(t, key), err) in ons.iter().zip(&errors) {
            assert!(
                err.abs() <= tol,
                "note-on {key} at {:.1} ms after bar 0 is {:.2} ms off the sixteenth grid (tolerance {:.1} ms)",
                (t as f64 - self.t0 as f64) / 1e3,
                err / 1e3,
                tol / 1e3
            );
        }
    }
}

/// Checks that every note-on was stopped and All Notes Off followed `stop_us`.
fn assert_nothing_hangs(events: &[MidiEvent], stop_us: u64) {
    let mut sounding: BTreeMap<u8, i64> = BTreeMap::new();
    for e in events {
        match e.bytes() {
            [s, k, v] if s & 0xF0 == 0x90 && *v > 0 => *sounding.entry(*k).or_default() += 1,
            [s, k, _] if s & 0xF0 == 0x80 || s & 0xF0 == 0x90 => {
                let n = sounding.entry(*k).or_default();
                *n -= 1;
                assert!(*n >= 0, "note-off for {k} without a note-on");
            }
            _ => {}
        }
    }
    assert!(
        sounding.values().all(|n| *n == 0),
        "hanging notes: {sounding:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.bytes() == [0xB0, 123, 0] && e.received_us >= stop_us),
        "no All Notes Off after Stop"
    );
}

/// Runs `reprise jam` against the DAW stand-in: clock at [`BPM`] from bar 0 until `stop_bars`
/// (then Stop, half a sixteenth later so that no note is due with it), the call of [`call`]
/// plus `extra` messages. Returns bar 0's time, the Stop's time and what came back.
fn session(
    tag: &str,
    args: &[&str],
    extra: Vec<(u64, Vec<u8>)>,
    stop_bars: f64,
) -> (Grid, Vec<MidiEvent>) {
    let model = model_dir();
    let (port_in, port_out) = (format!("{tag} out"), format!("{tag} in"));
    let mut all = vec!["--in", &port_in, "--out", &port_out];
    all.extend_from_slice(args);
    let (grid, events, _) = play_session(
        tag,
        || Jam::start(model.path(), &all, &[]),
        ("listening on", "notes in"),
        (extra, |_: &Jam| {}),
        stop_bars,
    );
    (grid, events)
}

/// [`session`] with any program that answers on "TAG in": `start` runs it once the DAW's
/// ports exist; `marks` are the stderr lines that say it listens and that it stopped cleanly;
/// `then` sees it after the DAW's Stop, before SIGTERM. Also returns the stderr after that.
fn play_session(
    tag: &str,
    start: impl FnOnce() -> Jam,
    marks: (&str, &str),
    (extra, then): (Vec<(u64, Vec<u8>)>, impl FnOnce(&Jam)),
    stop_bars: f64,
) -> (Grid, Vec<MidiEvent>, String) {
    let (mut out, mut input) = daw_ports(tag);
    let mut jam = start();
    jam.wait_for(marks.0, Duration::from_secs(20))
        .unwrap_or_else(|seen| panic!("reprise did not start:\n{seen}"));
    let t0 = now_us() + 300_000;
    let stop_at = t0 + (stop_bars * BAR + SIXTEENTH / 2.0) as u64;
    let mut plan = daw::clock_plan(t0, BPM, (stop_bars * 96.0) as u64 + 1);
    daw::merge(&mut plan, call(t0));
    daw::merge(&mut plan, extra.into_iter().map(|(t, m)| (t0 + t, m)));
    daw::merge(&mut plan, [(stop_at, vec![0xFC])]);
    let sent = daw::play(&mut out, &plan);
    let grid = Grid {
        t0,
        ticks: daw::tick_times(&plan, &sent),
    };
    let events = daw::collect(&mut input, stop_at + 500_000);
    then(&jam);
    let (code, rest) = jam.terminate();
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains(marks.1), "{rest}");
    input.close();
    out.close();
    let ons = note_ons(&events);
    assert!(!ons.is_empty(), "no response arrived");
    grid.assert_on_grid(&ons);
    // Nothing before bar 2 (the call ends during bar 1; the response starts at the next bar).
    let first = ons.iter().map(|o| o.0).min().unwrap();
    assert!(
        first as f64 >= t0 as f64 + 2.0 * BAR - tolerance_us(),
        "response began {:.1} ms before bar 2",
        (t0 as f64 + 2.0 * BAR - first as f64) / 1e3
    );
    assert!(
        ons.iter()
            .all(|o| (o.0 as f64) < stop_at as f64 + tolerance_us()),
        "notes after Stop"
    );
    assert_nothing_hangs(&events, stop_at);
    (grid, events, rest)
}

#[test]
fn the_response_follows_the_clock_on_the_grid_and_stop_leaves_nothing_hanging() {
    let _lock = devices();
    // Stop in the middle of the response's second bar.
    let (grid, events) = session("daw1", &["--bars", "2", "--seed", "3"], vec![], 3.5);
    let ons = note_ons(&events);
    assert!(!grid.pattern(&ons, 32, 16).is_empty(), "bar 2 is silent");
    assert!(
        !grid.pattern(&ons, 48, 8).is_empty(),
        "the response stopped after one bar"
    );
}

#[test]
fn control_changes_set_the_response_length_and_end_the_call() {
    let _lock = devices();
    // --bars 4, but CC 22 at 0 asks for one bar. Four bars of silence would end the call only
    // in bar 4; CC 20 ends it at beat 4.5, so the response starts at bar 2.
    let extra = vec![
        (0, vec![0xB0, 22, 0]),
        ((4.5 * QUARTER) as u64, vec![0xB0, 20, 127]),
    ];
    let (grid, events) = session(
        "daw2",
        &["--bars", "4", "--call-end-bars", "4", "--seed", "5"],
        extra,
        5.5,
    );
    let ons = note_ons(&events);
    assert!(!grid.pattern(&ons, 32, 16).is_empty(), "bar 2 is silent");
    let later = grid.pattern(&ons, 48, 64);
    assert!(
        later.is_empty(),
        "notes after the one-bar response: {later:?}"
    );
}

#[test]
fn a_looped_response_repeats_bar_for_bar() {
    let _lock = devices();
    let (grid, events) = session(
        "daw4",
        &["--bars", "1", "--loop", "--seed", "7"],
        vec![],
        5.5,
    );
    let ons = note_ons(&events);
    let bar2 = grid.pattern(&ons, 32, 16);
    assert!(!bar2.is_empty(), "bar 2 is silent");
    for bar in 3..=4 {
        assert_eq!(
            bar2,
            grid.pattern(&ons, bar * 16, 16),
            "bar {bar} differs from bar 2"
        );
    }
}

#[test]
fn the_daemon_runs_a_live_jam_from_its_configuration() {
    let _lock = devices();
    let model = model_dir();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reprise.toml");
    std::fs::write(
        &config,
        format!(
            "[speech]\nenabled = false\n[music]\nenabled = false\n\
             [live.jam]\ninput = \"dawd out\"\noutput = \"dawd in\"\nmodel = {:?}\n\
             bars = 2\nseed = 3\n",
            model.path()
        ),
    )
    .unwrap();
    // The daemon logs at info level on stderr: the jam's start, and its counters at SIGTERM.
    let health = |jam: &Jam| {
        let v: serde_json::Value = serde_json::from_str(&jam.get("/health")).unwrap();
        let j = &v["jam"];
        assert_eq!(j["running"], true, "{v}");
        assert_eq!(j["notes_in"], 4, "{v}");
        assert_eq!(j["responses"], 1, "{v}");
        assert!(j["notes_out"].as_u64().unwrap() > 0, "{v}");
        assert!(j["output"].as_str().unwrap().ends_with(":dawd in"), "{v}");
    };
    let (grid, events, rest) = play_session(
        "dawd",
        || Jam::serve(&config),
        ("live jam started", "live jam stopped"),
        (vec![], health),
        3.5,
    );
    assert!(rest.contains("notes_in=4"), "{rest}");
    let ons = note_ons(&events);
    assert!(!grid.pattern(&ons, 32, 16).is_empty(), "bar 2 is silent");
    assert!(
        !grid.pattern(&ons, 48, 8).is_empty(),
        "the response stopped after one bar"
    );
}

#[test]
fn an_unknown_port_is_a_clear_error_listing_the_ports() {
    let _lock = devices();
    let model = model_dir();
    let (out, input) = daw_ports("daw3");
    let text = reprise_fails(
        &[
            "jam",
            "--model",
            model.path().to_str().unwrap(),
            "--in",
            "no-such-port",
        ],
        &[],
    );
    assert!(
        text.contains("no MIDI input port named \"no-such-port\""),
        "{text}"
    );
    assert!(text.contains("daw3 out"), "{text}");
    input.close();
    out.close();
}

#[test]
fn a_jack_server_that_disappears_is_a_clear_error() {
    let _lock = devices();
    let model = model_dir();
    let server = format!("reprise-gone-{}", std::process::id());
    let jackd = common::start_jack_server(&server);
    let mut jam = Jam::start(
        model.path(),
        &["--virtual"],
        &[("JACK_DEFAULT_SERVER", &server)],
    );
    let started = jam.wait_for("listening on", Duration::from_secs(20));
    common::stop_jack_server(jackd);
    started.unwrap_or_else(|seen| panic!("reprise did not start:\n{seen}"));
    // reprise must notice and exit on its own with a clear message.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = jam.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reprise hangs after the server left"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: String = jam.lines.iter().map(|l| l + "\n").collect();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(
        rest.contains("reprise: error: the MIDI system went away"),
        "{rest}"
    );
    assert!(!rest.contains("panicked"), "{rest}");
}

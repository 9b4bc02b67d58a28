//! The jam session's decisions without ports: a random-weight model hears calls fed as
//! timed MIDI events on a simulated clock (120 BPM without MIDI clock: a bar is 2 s), and
//! the test reads what it queues for the scheduler. Covers when responses start and end,
//! --loop, --overlap, --mute-while-playing, the control changes and transport.

#[path = "common/music.rs"]
mod music;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use reprise::music::jam::JamOptions;
use reprise::music::jam::scheduler::{Scheduled, SchedulerShared};
use reprise::music::jam::session::{JamState, JamStatus, Session};
use reprise::music::live::MidiEvent;
use reprise::music::model::MusicModel;

/// Bar 0 starts here (simulated microseconds).
const ORIGIN: u64 = 1_000_000_000;
const BAR: u64 = 2_000_000;
const QUARTER: u64 = BAR / 4;

struct Rig {
    session: Session,
    ring: rtrb::Consumer<Scheduled>,
    shared: Arc<SchedulerShared>,
    status: Arc<JamStatus>,
    now: u64,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(opts: JamOptions) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        music::write_random_model(dir.path(), "onset-roll", 36, 60, 4);
        let model = MusicModel::load(dir.path(), None).unwrap();
        let (producer, ring) = rtrb::RingBuffer::new(1 << 16);
        let shared = Arc::new(SchedulerShared::default());
        let status = Arc::new(JamStatus::default());
        let session = Session::new(
            model,
            opts,
            ORIGIN,
            producer,
            shared.clone(),
            status.clone(),
        );
        Rig {
            session,
            ring,
            shared,
            status,
            now: ORIGIN,
            _dir: dir,
        }
    }

    /// Feeds a message at simulated time `at` (after polling up to then).
    fn send(&mut self, at: u64, bytes: &[u8]) -> Vec<Scheduled> {
        let out = self.run_to(at);
        let mut e = MidiEvent::new(0, bytes).unwrap();
        e.received_us = at;
        self.session.handle(&e);
        out
    }

    /// Polls every millisecond up to `t`; returns what was queued.
    fn run_to(&mut self, t: u64) -> Vec<Scheduled> {
        let mut out = Vec::new();
        while self.now < t {
            self.now = (self.now + 1_000).min(t);
            self.session.poll(self.now).unwrap();
            while let Ok(e) = self.ring.pop() {
                out.push(e);
            }
        }
        out
    }

    /// Four quarter notes from `at`, each held an eighth.
    fn call(&mut self, at: u64) -> Vec<Scheduled> {
        let mut out = Vec::new();
        for (i, key) in [60u8, 64, 67, 72].iter().enumerate() {
            let on = at + i as u64 * QUARTER;
            out.extend(self.send(on, &[0x90, *key, 100]));
            out.extend(self.send(on + QUARTER / 2, &[0x80, *key, 0]));
        }
        out
    }
}

fn is_on(e: &Scheduled) -> bool {
    matches!(e.bytes(), [s, _, v] if s & 0xF0 == 0x90 && *v > 0)
}

fn ons(events: &[Scheduled]) -> Vec<&Scheduled> {
    events.iter().filter(|e| is_on(e)).collect()
}

/// The note-ons of bar `b` (time within the bar, bytes).
fn bar_ons(out: &[Scheduled], b: u64) -> Vec<(u64, Vec<u8>)> {
    out.iter()
        .filter(|e| is_on(e) && e.time_us >= ORIGIN + b * BAR && e.time_us < ORIGIN + (b + 1) * BAR)
        .map(|e| (e.time_us - ORIGIN - b * BAR, e.bytes().to_vec()))
        .collect()
}

/// Note-ons minus note-offs, over `events`.
fn balance(events: &[Scheduled]) -> i64 {
    events
        .iter()
        .map(|e| match e.bytes() {
            [s, _, v] if s & 0xF0 == 0x90 && *v > 0 => 1,
            [s, _, _] if s & 0xF0 == 0x80 => -1,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_call_is_answered_at_the_next_bar_for_the_given_bars_in_time_order() {
    let mut rig = Rig::new(JamOptions {
        bars: 2,
        channel: 4,
        ..JamOptions::default()
    });
    let mut out = rig.call(ORIGIN);
    assert_eq!(rig.status.state(), JamState::Listening);
    // Last release at beat 3.5; a bar of silence ends the call at beat 7.5.
    out.extend(rig.run_to(ORIGIN + 2 * BAR - 1));
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 1);
    assert_eq!(rig.status.state(), JamState::Answering);
    out.extend(rig.run_to(ORIGIN + 5 * BAR));
    assert!(!ons(&out).is_empty(), "the response is silent");
    assert!(
        out.iter().all(|e| e.time_us >= ORIGIN + 2 * BAR),
        "before bar 2"
    );
    assert!(
        out.iter().all(|e| e.time_us <= ORIGIN + 4 * BAR),
        "past two bars"
    );
    assert!(
        out.windows(2).all(|w| w[0].time_us <= w[1].time_us),
        "out of order"
    );
    assert!(out.iter().all(|e| e.bytes()[0] & 15 == 4), "wrong channel");
    // On the model's grid (4 steps per quarter).
    assert!(
        out.iter()
            .all(|e| (e.time_us - ORIGIN).is_multiple_of(QUARTER / 4))
    );
    assert_eq!(balance(&out), 0, "a note is left on");
    assert_eq!(rig.status.state(), JamState::Listening);
    assert!(rig.status.last_ready_us.load(Ordering::Relaxed) > 0);
}

#[test]
fn without_overlap_playing_during_the_response_is_ignored() {
    let mut rig = Rig::new(JamOptions::default());
    rig.call(ORIGIN);
    rig.run_to(ORIGIN + 2 * BAR + QUARTER);
    rig.call(ORIGIN + 2 * BAR + QUARTER);
    rig.run_to(ORIGIN + 8 * BAR);
    assert_eq!(rig.status.ignored.load(Ordering::Relaxed), 4);
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 1);
}

#[test]
fn with_overlap_the_next_call_replaces_the_response_at_its_bar_line() {
    let mut rig = Rig::new(JamOptions {
        overlap: true,
        bars: 4,
        ..JamOptions::default()
    });
    let mut out = rig.call(ORIGIN);
    // The first response plays from bar 2; a second call in bar 2 ends in bar 3 and is
    // answered from bar 4, cutting the first response there.
    out.extend(rig.call(ORIGIN + 2 * BAR));
    out.extend(rig.run_to(ORIGIN + 9 * BAR));
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 2);
    assert_eq!(rig.status.ignored.load(Ordering::Relaxed), 0);
    assert_eq!(balance(&out), 0, "a note is left on");
    // From bar 4 on, only the second response sounds: the same call heard alone (responses
    // are primed with their call only; the second uses the next seed) gives the same
    // note-ons two bars earlier.
    let mut alone = Rig::new(JamOptions {
        bars: 4,
        seed: 2,
        ..JamOptions::default()
    });
    let mut reference = alone.call(ORIGIN);
    reference.extend(alone.run_to(ORIGIN + 7 * BAR));
    let from_bar_4: Vec<(u64, Vec<u8>)> = ons(&out)
        .iter()
        .filter(|e| e.time_us >= ORIGIN + 4 * BAR)
        .map(|e| (e.time_us - 2 * BAR, e.bytes().to_vec()))
        .collect();
    let expected: Vec<(u64, Vec<u8>)> = ons(&reference)
        .iter()
        .map(|e| (e.time_us, e.bytes().to_vec()))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(from_bar_4, expected);
    assert_eq!(
        rig.shared.generation.load(Ordering::Relaxed),
        0,
        "nothing cancelled"
    );
}

#[test]
fn a_loop_repeats_until_a_new_call_stops_it() {
    let mut rig = Rig::new(JamOptions {
        looping: true,
        bars: 1,
        ..JamOptions::default()
    });
    let mut out = rig.call(ORIGIN);
    out.extend(rig.run_to(ORIGIN + 6 * BAR));
    assert!(!bar_ons(&out, 2).is_empty());
    assert_eq!(bar_ons(&out, 2), bar_ons(&out, 3));
    assert_eq!(bar_ons(&out, 2), bar_ons(&out, 5));
    // A note stops the loop at once (cancel: the scheduler stops what sounds).
    rig.send(ORIGIN + 6 * BAR + 10_000, &[0x90, 62, 90]);
    assert_eq!(rig.shared.generation.load(Ordering::Relaxed), 1);
    let after = rig.run_to(ORIGIN + 7 * BAR);
    assert!(ons(&after).is_empty(), "the loop went on");
    assert_eq!(rig.status.state(), JamState::Listening);
}

#[test]
fn holding_notes_mutes_the_response() {
    let mut rig = Rig::new(JamOptions {
        mute_while_playing: true,
        overlap: true,
        ..JamOptions::default()
    });
    rig.send(ORIGIN, &[0x90, 60, 100]);
    assert!(rig.shared.mute.load(Ordering::Relaxed));
    rig.send(ORIGIN + 1_000, &[0x90, 64, 100]);
    rig.send(ORIGIN + 2_000, &[0x80, 60, 0]);
    assert!(
        rig.shared.mute.load(Ordering::Relaxed),
        "one note still held"
    );
    rig.send(ORIGIN + 3_000, &[0x90, 64, 0]);
    assert!(!rig.shared.mute.load(Ordering::Relaxed));
}

#[test]
fn control_changes_end_the_call_set_the_length_and_panic() {
    let mut rig = Rig::new(JamOptions {
        call_end_bars: 8,
        bars: 4,
        looping: true,
        ..JamOptions::default()
    });
    rig.send(ORIGIN, &[0xB0, 22, 0]); // one bar
    rig.call(ORIGIN);
    rig.send(ORIGIN + 4 * QUARTER + 1_000, &[0xB0, 20, 127]); // end the call
    let out = rig.run_to(ORIGIN + 4 * BAR);
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 1);
    // Answered from bar 2 (eight bars of silence would have waited until bar 9) and one
    // bar long: bar 3 repeats bar 2.
    assert!(out.iter().all(|e| e.time_us >= ORIGIN + 2 * BAR));
    assert!(!bar_ons(&out, 2).is_empty());
    assert_eq!(bar_ons(&out, 2), bar_ons(&out, 3));
    // Panic: everything cancelled, nothing more queued.
    rig.send(ORIGIN + 4 * BAR, &[0xB0, 24, 127]);
    assert_eq!(rig.shared.generation.load(Ordering::Relaxed), 1);
    assert!(ons(&rig.run_to(ORIGIN + 6 * BAR)).is_empty());
}

#[test]
fn variation_and_temperature_change_the_next_response() {
    let response = |ccs: &[[u8; 3]]| {
        let mut rig = Rig::new(JamOptions::default());
        for cc in ccs {
            rig.send(ORIGIN, cc);
        }
        rig.call(ORIGIN);
        let out = rig.run_to(ORIGIN + 5 * BAR);
        out.iter()
            .map(|e| (e.time_us, e.bytes().to_vec()))
            .collect::<Vec<_>>()
    };
    let plain = response(&[]);
    assert_eq!(
        plain,
        response(&[]),
        "the same seed must give the same response"
    );
    assert_ne!(
        plain,
        response(&[[0xB0, 23, 127]]),
        "variation changed nothing"
    );
    assert_ne!(
        plain,
        response(&[[0xB0, 21, 127]]),
        "temperature changed nothing"
    );
}

#[test]
fn transport_stop_cancels_and_start_restarts_the_grid() {
    let mut rig = Rig::new(JamOptions::default());
    rig.call(ORIGIN);
    rig.run_to(ORIGIN + 2 * BAR + QUARTER);
    rig.send(ORIGIN + 2 * BAR + QUARTER, &[0xFC]);
    assert_eq!(rig.shared.generation.load(Ordering::Relaxed), 1);
    assert!(ons(&rig.run_to(ORIGIN + 3 * BAR)).is_empty());
    assert_eq!(rig.status.state(), JamState::Stopped);
    // Notes while stopped are not recorded: no response follows.
    rig.call(ORIGIN + 3 * BAR);
    rig.run_to(ORIGIN + 6 * BAR);
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 1);
    // Start and clock at 120 BPM: bar 0 is the first tick; a call in bar 0.
    let t = ORIGIN + 6 * BAR;
    rig.send(t, &[0xFA]);
    let tick = QUARTER / 24;
    let mut plan: Vec<(u64, Vec<u8>)> = (0..4 * 96)
        .map(|k| (t + 1_000 + k * tick, vec![0xF8]))
        .collect();
    for (i, key) in [60u8, 64, 67, 72].iter().enumerate() {
        let on = t + 1_000 + i as u64 * QUARTER;
        plan.push((on + 1, vec![0x90, *key, 100]));
        plan.push((on + QUARTER / 2, vec![0x80, *key, 0]));
    }
    plan.sort_by_key(|(at, _)| *at);
    for (at, bytes) in &plan {
        rig.send(*at, bytes);
    }
    assert_eq!(rig.status.responses.load(Ordering::Relaxed), 2);
    assert_eq!(rig.status.state(), JamState::Answering);
}

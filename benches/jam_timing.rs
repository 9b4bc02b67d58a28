//! Output timing of `reprise jam`, over real JACK MIDI (build with `--features jack`, run
//! through `scripts/with-jack`; `scripts/bench-jam-timing` does both at two JACK periods).
//!
//! 1. Scheduler jitter: 2,000 events (note-ons and note-offs at uneven times over ~10 s) go
//!    through the jam scheduler into a JACK output wired to a receiving JACK input in this
//!    process. For each event it reports
//!    - send error: when the scheduler handed it to the port minus when it was due;
//!    - arrival: when the receiving callback ran minus when it was due (one process clock,
//!      no alignment needed), and the arrival's deviation from its median (jitter);
//!    - JACK time: the receiving port's JACK timestamp minus when it was due, after removing
//!      the median difference (JACK's clock has another origin); its spread is the jitter.
//! 2. Response readiness: a jam session (without ports) hears one-bar calls at 200 BPM and
//!    answers with 2, 4 and 8 bars; it reports the time from the end of each call to its
//!    response being ready to play, against one bar at 200 BPM (1.2 s).
//!
//!     scripts/with-jack cargo bench --features jack --bench jam_timing [-- --model DIR]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reprise::music::jam::JamOptions;
use reprise::music::jam::scheduler::{MidiSend, Scheduled, Scheduler, SchedulerShared};
use reprise::music::jam::session::{JamStatus, Session};
use reprise::music::live::{MidiEvent, MidiIn, MidiOut, PortSpec};
use reprise::music::model::MusicModel;
use reprise::rt::time::now_us;

#[path = "../tests/common/music.rs"]
mod music;

const EVENTS: usize = 2_000;

/// Sends through a MIDI port and logs (due, sent) into a buffer allocated up front.
struct LoggedOut {
    port: MidiOut,
    log: Vec<(u64, u64)>,
}

impl MidiSend for LoggedOut {
    fn send(&mut self, message: &[u8], due_us: u64) -> bool {
        let ok = self.port.send(message).is_ok();
        if self.log.len() < self.log.capacity() {
            self.log.push((due_us, now_us()));
        }
        ok
    }
}

fn stats(label: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label:<44} n={:<5} median {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        v.len(),
        q(0.5),
        q(0.99),
        v[v.len() - 1]
    );
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn scheduler_jitter() {
    let mut input = MidiIn::open(&PortSpec::Virtual("bench in".into()), "bench-sink", 8192)
        .expect("a JACK server (run through scripts/with-jack)");
    let port = MidiOut::open(&PortSpec::Named("bench in".into()), "bench-src").unwrap();
    let (mut producer, consumer) = rtrb::RingBuffer::<Scheduled>::new(EVENTS + 16);
    let shared = Arc::new(SchedulerShared::default());
    let sink = LoggedOut {
        port,
        log: Vec::with_capacity(EVENTS + 16),
    };
    let scheduler = Scheduler::new(consumer, sink, shared.clone(), 0);
    let thread = std::thread::spawn(move || {
        let rt = reprise::rt::priority::make_current_thread_realtime();
        println!("scheduler thread at real-time priority: {rt}");
        scheduler.run()
    });
    std::thread::sleep(Duration::from_millis(300));
    // Uneven gaps of 2 to 8 ms; every message unique (key, velocity) to match them up.
    let t0 = now_us() + 200_000;
    let mut due = Vec::with_capacity(EVENTS);
    let mut t = t0;
    for i in 0..EVENTS / 2 {
        let key = (i % 128) as u8;
        let vel = 1 + (i / 128) as u8;
        producer
            .push(Scheduled::new(t, 0, &[0x90, key, vel]).unwrap())
            .unwrap();
        due.push(([0x90, key, vel], t));
        let off = t + 2_000 + (i as u64 * 977) % 3_000;
        producer
            .push(Scheduled::new(off, 0, &[0x80, key, vel]).unwrap())
            .unwrap();
        due.push(([0x80, key, vel], off));
        t = off + 2_000 + (i as u64 * 1_361) % 3_000;
    }
    let mut got: Vec<MidiEvent> = Vec::with_capacity(EVENTS + 16);
    while now_us() < t + 300_000 {
        while let Some(e) = input.try_recv() {
            got.push(e);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.stop.store(true, Ordering::Release);
    let sink = thread.join().unwrap();
    while let Some(e) = input.try_recv() {
        got.push(e);
    }
    let send_err: Vec<f64> = sink
        .log
        .iter()
        .take(EVENTS)
        .map(|(d, s)| (*s as f64 - *d as f64) / 1e3)
        .collect();
    let mut arrival = Vec::new();
    let mut jack = Vec::new();
    for (bytes, t) in &due {
        if let Some(e) = got.iter().find(|e| e.bytes() == bytes) {
            arrival.push((e.received_us as f64 - *t as f64) / 1e3);
            jack.push((e.timestamp_us as f64 - *t as f64) / 1e3);
        }
    }
    println!(
        "scheduler: {} events due, {} sent, {} received, {} late (> 1 ms at send)",
        due.len(),
        shared.sent.load(Ordering::Relaxed),
        arrival.len(),
        shared.late.load(Ordering::Relaxed)
    );
    stats("send time - due time", send_err);
    let m = median(&arrival);
    stats("arrival (receiving callback) - due", arrival.clone());
    stats(
        "|arrival - due - median|  (jitter)",
        arrival.iter().map(|a| (a - m).abs()).collect(),
    );
    let mj = median(&jack);
    stats(
        "|JACK timestamp - due - median|  (jitter)",
        jack.iter().map(|a| (a - mj).abs()).collect(),
    );
    input.close();
}

fn response_readiness(model_dir: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, what) = match model_dir {
        Some(d) => (std::path::PathBuf::from(&d), d),
        None => {
            music::write_random_model_sized(tmp.path(), "onset-roll", 36, 60, 4, 256, 150);
            (
                tmp.path().to_path_buf(),
                "random onset-roll model, 60 keys, LSTM 2x256, NADE 150".into(),
            )
        }
    };
    println!("response readiness at 200 BPM (one bar = 1200 ms), model: {what}");
    for bars in [2u32, 4, 8] {
        let model = MusicModel::load(&dir, None).unwrap();
        let opts = JamOptions {
            bpm: 200.0,
            bars,
            ..JamOptions::default()
        };
        let (producer, mut consumer) = rtrb::RingBuffer::new(8192);
        let shared = Arc::new(SchedulerShared::default());
        let status = Arc::new(JamStatus::default());
        let origin = now_us();
        let mut session = Session::new(model, opts, origin, producer, shared, status.clone());
        let quarter = 300_000u64;
        let bar = 4 * quarter;
        let mut ready = Vec::new();
        for call in 0..10u64 {
            // A call of eight eighth notes in one bar, a response later.
            let start = origin + call * (bars as u64 + 4) * bar;
            for i in 0..8u64 {
                let key = 60 + ((i * 5 + call) % 12) as u8;
                let mut on = MidiEvent::new(0, &[0x90, key, 100]).unwrap();
                on.received_us = start + i * quarter / 2;
                let mut off = MidiEvent::new(0, &[0x80, key, 0]).unwrap();
                off.received_us = on.received_us + quarter / 2 - 10_000;
                session.handle(&on);
                session.handle(&off);
            }
            let before = status.responses.load(Ordering::Relaxed);
            let mut now = start;
            while status.responses.load(Ordering::Relaxed) == before {
                now += 1_000;
                session.poll(now).unwrap();
                while consumer.pop().is_ok() {}
            }
            ready.push(status.last_ready_us.load(Ordering::Relaxed) as f64 / 1e3);
            // Let the response play out (in simulated time) before the next call.
            for k in 0..=(bars as u64 + 3) * 100 {
                session.poll(now + k * bar / 100).unwrap();
                while consumer.pop().is_ok() {}
            }
        }
        stats(&format!("call end -> {bars}-bar response ready"), ready);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut model = None;
    while let Some(a) = args.next() {
        if a == "--model" {
            model = args.next();
        }
    }
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    scheduler_jitter();
    response_readiness(model);
}

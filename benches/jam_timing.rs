//! Output timing of `reprise jam`, over real JACK MIDI (build with `--features jack`, run
//! through `scripts/with-jack`; `scripts/bench-jam-timing` does both at two JACK periods).
//!
//! 1. Output jitter: 2,000 events (note-ons and note-offs at uneven times over ~7 s) go into
//!    a JACK output wired to a receiving JACK client in this process, twice:
//!    - through Reprise's JACK output (what `reprise jam` uses in the JACK build: its process
//!      callback writes each event at the frame of its due time);
//!    - through the scheduler thread and a midir JACK output (what the build without JACK
//!      uses, over ALSA), for comparison.
//!
//!    The receiving client reads each event's frame in its period and turns it into a time
//!    on the process clock from the period's JACK cycle times, as a DAW would. For each event
//!    it reports
//!    - frame time − due: when the receiver sees the event, against when it was due; and its
//!      deviation from its median (the jitter; the median is a constant latency that
//!      `--offset-ms` can remove);
//!    - callback − due: when the receiving process callback ran (once per period, so this
//!      is spread over a period whatever the sender does);
//!    - for the scheduler thread, send time − due.
//! 2. Response readiness: a jam session (without ports) hears one-bar calls at 200 BPM and
//!    answers with 2, 4 and 8 bars; it reports the time from the end of each call to its
//!    response being ready to play, against one bar at 200 BPM (1.2 s), and to the
//!    response's first note.
//!
//!     scripts/with-jack cargo bench --features jack --bench jam_timing [-- --model DIR]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reprise::music::jam::JamOptions;
use reprise::music::jam::cycle::{ClockLink, Cycle};
use reprise::music::jam::jack_out::JackOutput;
use reprise::music::jam::scheduler::{MidiSend, Scheduled, Scheduler, SchedulerShared};
use reprise::music::jam::session::{JamState, JamStatus, Session};
use reprise::music::live::{MidiEvent, MidiOut, PortSpec};
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

/// One message as the receiving client saw it.
#[derive(Clone, Copy, Default)]
struct Received {
    message: [u8; 3],
    /// When its process callback ran (process clock).
    callback_us: u64,
    /// The time of its frame (process clock, from the period's cycle times).
    frame_us: u64,
}

/// The receiving client's process callback: every message with its frame's time.
struct Receiver {
    port: jack::Port<jack::MidiIn>,
    link: ClockLink,
    ring: rtrb::Producer<Received>,
    /// Per period: callback time − period start, period length (process clock), and whether
    /// the cycle times were implausible.
    periods: rtrb::Producer<(i64, u64, bool)>,
    sample_rate: u64,
}

impl jack::ProcessHandler for Receiver {
    fn process(&mut self, client: &jack::Client, scope: &jack::ProcessScope) -> jack::Control {
        let before = client.time();
        let now = now_us();
        let after = client.time();
        self.link.update(before, now, after);
        let Ok(times) = scope.cycle_times() else {
            return jack::Control::Continue;
        };
        // As the output does: the cycle times, unless they disagree with the process clock.
        let frames = scope.n_frames();
        let cycle = Cycle::checked(
            self.link.to_process(times.current_usecs),
            self.link.to_process(times.next_usecs),
            now,
            frames,
            frames as u64 * 1_000_000 / self.sample_rate,
        );
        let span = cycle.end_us - cycle.start_us;
        let fell_back = cycle.start_us != self.link.to_process(times.current_usecs);
        let _ = self
            .periods
            .push((now as i64 - cycle.start_us as i64, span, fell_back));
        for event in self.port.iter(scope) {
            let mut message = [0; 3];
            let n = event.bytes.len().min(3);
            message[..n].copy_from_slice(&event.bytes[..n]);
            let _ = self.ring.push(Received {
                message,
                callback_us: now,
                frame_us: cycle.start_us + event.time as u64 * span / cycle.frames.max(1) as u64,
            });
        }
        jack::Control::Continue
    }
}

fn stats(label: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label:<44} n={:<5} min {:>8.3} ms  median {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms",
        v.len(),
        v[0],
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

/// Uneven gaps of 2 to 8 ms from `t0`; every message unique (key, velocity) to match them up.
fn plan(t0: u64) -> Vec<([u8; 3], u64)> {
    let mut due = Vec::with_capacity(EVENTS);
    let mut t = t0;
    for i in 0..EVENTS / 2 {
        let key = (i % 128) as u8;
        let vel = 1 + (i / 128) as u8;
        due.push(([0x90, key, vel], t));
        let off = t + 2_000 + (i as u64 * 977) % 3_000;
        due.push(([0x80, key, vel], off));
        t = off + 2_000 + (i as u64 * 1_361) % 3_000;
    }
    due
}

/// How the events leave.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    /// Reprise's JACK output client (`reprise jam` in the JACK build).
    JackOutput,
    /// The scheduler thread sending through a midir JACK output.
    SchedulerThread,
}

/// Counts the server's xruns.
struct Xruns(Arc<AtomicU64>);

impl jack::NotificationHandler for Xruns {
    fn xrun(&mut self, _: &jack::Client) -> jack::Control {
        self.0.fetch_add(1, Ordering::Relaxed);
        jack::Control::Continue
    }
}

/// The receiving client and what its callback reports.
struct Sink {
    _client: jack::AsyncClient<Xruns, Receiver>,
    xruns: Arc<AtomicU64>,
    received: rtrb::Consumer<Received>,
    periods: rtrb::Consumer<(i64, u64, bool)>,
}

impl Sink {
    fn open() -> Sink {
        let (client, _) = jack::Client::new("bench-sink", jack::ClientOptions::NO_START_SERVER)
            .expect("a JACK server (run through scripts/with-jack)");
        println!(
            "receiving client: JACK period {} frames at {} Hz",
            client.buffer_size(),
            client.sample_rate()
        );
        let port = client
            .register_port("bench in", jack::MidiIn::default())
            .unwrap();
        let sample_rate = client.sample_rate() as u64;
        let (ring, received) = rtrb::RingBuffer::new(EVENTS + 64);
        let (periods_in, periods) = rtrb::RingBuffer::new(1 << 16);
        let xruns = Arc::new(AtomicU64::new(0));
        let client = client
            .activate_async(
                Xruns(xruns.clone()),
                Receiver {
                    port,
                    link: ClockLink::default(),
                    ring,
                    periods: periods_in,
                    sample_rate,
                },
            )
            .unwrap();
        Sink {
            _client: client,
            xruns,
            received,
            periods,
        }
    }
}

fn output_jitter(path: Path, sink: &mut Sink) {
    while sink.received.pop().is_ok() {}
    while sink.periods.pop().is_ok() {}
    let xruns_before = sink.xruns.load(Ordering::Relaxed);
    let (mut producer, consumer) = rtrb::RingBuffer::<Scheduled>::new(EVENTS + 16);
    let shared = Arc::new(SchedulerShared::default());
    let target = PortSpec::Named("bench-sink:bench in".into());
    let mut jack_output = None;
    let mut thread = None;
    match path {
        Path::JackOutput => {
            let gone = Arc::new(AtomicBool::new(false));
            let output =
                JackOutput::open(&target, "bench-src", consumer, shared.clone(), 0, gone).unwrap();
            println!(
                "output: Reprise's JACK output, server in real time: {}",
                output.is_realtime()
            );
            jack_output = Some(output);
        }
        Path::SchedulerThread => {
            let port = MidiOut::open(&target, "bench-src").unwrap();
            let logged = LoggedOut {
                port,
                log: Vec::with_capacity(EVENTS + 16),
            };
            let scheduler = Scheduler::new(consumer, logged, shared.clone(), 0);
            thread = Some(std::thread::spawn(move || {
                let rt = reprise::rt::priority::make_current_thread_realtime();
                println!("output: scheduler thread at real-time priority: {rt}");
                scheduler.run()
            }));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let due = plan(now_us() + 200_000);
    for (bytes, t) in &due {
        producer
            .push(Scheduled::new(*t, 0, bytes).unwrap())
            .unwrap();
    }
    let end = due.last().unwrap().1;
    let mut got: Vec<Received> = Vec::with_capacity(EVENTS + 64);
    while now_us() < end + 300_000 {
        while let Ok(e) = sink.received.pop() {
            got.push(e);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    shared.stop.store(true, Ordering::Release);
    let send_log = match (jack_output, thread) {
        (Some(output), _) => {
            output.close();
            None
        }
        (_, Some(thread)) => Some(thread.join().unwrap().log),
        _ => unreachable!(),
    };
    std::thread::sleep(Duration::from_millis(50));
    while let Ok(e) = sink.received.pop() {
        got.push(e);
    }
    let periods: Vec<(i64, u64, bool)> = std::iter::from_fn(|| sink.periods.pop().ok()).collect();
    let mut frame = Vec::new();
    let mut callback = Vec::new();
    for (bytes, t) in &due {
        if let Some(e) = got.iter().find(|e| e.message == *bytes) {
            frame.push((e.frame_us as f64 - *t as f64) / 1e3);
            callback.push((e.callback_us as f64 - *t as f64) / 1e3);
        }
    }
    println!(
        "{} events due, {} sent, {} received, {} late (> 1 ms at send); {} JACK xruns",
        due.len(),
        shared.sent.load(Ordering::Relaxed),
        frame.len(),
        shared.late.load(Ordering::Relaxed),
        sink.xruns.load(Ordering::Relaxed) - xruns_before
    );
    if let Some(log) = send_log {
        stats(
            "send time - due time",
            log.iter()
                .take(EVENTS)
                .map(|(d, s)| (*s as f64 - *d as f64) / 1e3)
                .collect(),
        );
    }
    println!(
        "periods whose JACK cycle times disagreed with the clock: {} of {}",
        periods.iter().filter(|p| p.2).count(),
        periods.len()
    );
    stats(
        "period length from JACK's cycle times",
        periods.iter().map(|p| p.1 as f64 / 1e3).collect(),
    );
    stats(
        "receiving callback - period start",
        periods.iter().map(|p| p.0 as f64 / 1e3).collect(),
    );
    stats("callback - due (receiving callback)", callback);
    stats("frame time - due (receiver's view)", frame.clone());
    let m = median(&frame);
    stats(
        "|frame time - due - median|  (jitter)",
        frame.iter().map(|a| (a - m).abs()).collect(),
    );
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
        let mut first_note = Vec::new();
        let mut next_call = origin;
        for call in 0..10u64 {
            // A call of eight eighth notes in one bar, a response later.
            let start = next_call;
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
                assert!(now < start + 64 * bar, "call {call} got no response");
                session.poll(now).unwrap();
                while consumer.pop().is_ok() {}
            }
            ready.push(status.last_ready_us.load(Ordering::Relaxed) as f64 / 1e3);
            // Let the response play out (in simulated time) before the next call; `now` is
            // when the call's end was detected. The response starts later when generating
            // it took long (a loaded machine): play on until it is over.
            let mut first = None;
            let mut k = 0;
            while k <= (bars as u64 + 3) * 100 || status.state() == JamState::Answering {
                session.poll(now + k * bar / 100).unwrap();
                while let Ok(e) = consumer.pop() {
                    if first.is_none()
                        && matches!(e.bytes(), [s, _, v] if s & 0xF0 == 0x90 && *v > 0)
                    {
                        first = Some(e.time_us);
                    }
                }
                k += 1;
            }
            // The next call starts on the bar line after that.
            let over = now + k * bar / 100 - origin;
            next_call = origin + (over / bar + 1) * bar;
            if let Some(t) = first {
                first_note.push((t as f64 - now as f64) / 1e3);
            }
        }
        stats(&format!("call end -> {bars}-bar response ready"), ready);
        stats(
            &format!("call end -> {bars}-bar response's first note"),
            first_note,
        );
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
    let mut sink = Sink::open();
    println!("== Reprise's JACK output (reprise jam, JACK build)");
    output_jitter(Path::JackOutput, &mut sink);
    println!("== scheduler thread + midir JACK output (for comparison)");
    output_jitter(Path::SchedulerThread, &mut sink);
    drop(sink);
    response_readiness(model);
}

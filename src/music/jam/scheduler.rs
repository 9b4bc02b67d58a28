//! The output scheduler: sends each event at its time.
//!
//! The jam thread pushes [`Scheduled`] events, in time order, into a wait-free SPSC ring.
//! A [`Dispatcher`] takes them out: it keeps the count of every note it started, so that
//! whatever happens (a cancelled response, mute, panic, exit) it can stop exactly those
//! notes. Control from other threads arrives through atomics in [`SchedulerShared`]: it
//! never waits for the ring. Two outputs drive it:
//! - the scheduler thread ([`Scheduler`], for midir ports) sleeps until shortly before the
//!   next event is due, spins the rest of the way and sends it;
//! - a JACK output's process callback ([`super::cycle`]) takes each period the events due
//!   before the period ends and writes them at their frames.
//!
//! Neither loop allocates, locks or logs; both are tested under an allocation checker with a
//! recording sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::music::live::ShortMessage;
use crate::rt::time::now_us;

/// One message to send at a time on the process clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scheduled {
    /// When to send it, in microseconds on the process clock.
    pub time_us: u64,
    /// The response generation it belongs to; events of an older generation are dropped.
    pub generation: u32,
    message: ShortMessage,
}

impl Scheduled {
    /// A message of one to three bytes; `None` otherwise.
    pub fn new(time_us: u64, generation: u32, message: &[u8]) -> Option<Scheduled> {
        Some(Scheduled {
            time_us,
            generation,
            message: ShortMessage::new(message)?,
        })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &[u8] {
        self.message.bytes()
    }
}

/// Where the scheduler sends messages: a MIDI output, or a recorder in tests.
pub trait MidiSend {
    /// Sends one message that was due at `due_us`; false if it could not be sent.
    /// Called on the scheduler thread: implementations must not allocate or block.
    fn send(&mut self, message: &[u8], due_us: u64) -> bool;
}

impl MidiSend for crate::music::live::MidiOut {
    fn send(&mut self, message: &[u8], _due_us: u64) -> bool {
        self.send_short(message)
    }
}

/// Controls and counters shared between the scheduler and the other threads.
#[derive(Debug, Default)]
pub struct SchedulerShared {
    /// The current response generation. Raising it stops every sounding note (note-offs
    /// and All Notes Off) and drops queued events of older generations.
    pub generation: AtomicU32,
    /// While set, note-ons are not sent and sounding notes are stopped.
    pub mute: AtomicBool,
    /// Set to make the scheduler stop every note and return.
    pub stop: AtomicBool,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Note-ons sent.
    pub notes_out: AtomicU64,
    /// Events dropped because their generation was cancelled.
    pub cancelled: AtomicU64,
    /// Note-ons not sent because of mute.
    pub muted: AtomicU64,
    /// Messages that could not be sent.
    pub send_errors: AtomicU64,
    /// Events sent more than a millisecond after their time.
    pub late: AtomicU64,
    /// Periods processed since a period-driven output stopped every note after `stop`
    /// (see [`super::cycle`]); the output can close once its last messages went out.
    pub periods_stopped: AtomicU64,
}

impl SchedulerShared {
    /// Cancels everything queued and stops every sounding note; returns the new generation.
    pub fn cancel(&self) -> u32 {
        self.generation
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1)
    }
}

/// How long before an event the scheduler stops sleeping and starts spinning.
pub const SPIN_US: u64 = 400;
/// Longest sleep, so that controls are seen promptly.
const MAX_SLEEP_US: u64 = 2_000;

/// What an output keeps between events: the ring, the controls it has applied and the notes
/// it started. The scheduler thread drives it by the clock ([`Scheduler`]); an output driven
/// by an audio server's period drives it one period at a time ([`Dispatcher::deliver_until`]).
/// Every message goes to the [`MidiSend`] passed to the call, so one dispatcher can write into
/// a different buffer each period.
pub struct Dispatcher {
    consumer: rtrb::Consumer<Scheduled>,
    shared: Arc<SchedulerShared>,
    channel: u8,
    /// Note-ons sent and not yet stopped, per key.
    sounding: [u16; 128],
    generation: u32,
    muted: bool,
}

/// The next event in the ring, as the dispatcher sees it.
enum Next {
    /// Nothing queued.
    Empty,
    /// The event at the front belonged to a cancelled generation and was dropped.
    Dropped,
    /// The event at the front belongs to a generation begun since the controls were
    /// applied: apply the cancel first.
    Pending,
    /// An event of the current generation (still in the ring).
    Event(Scheduled),
}

impl Dispatcher {
    /// A dispatcher sending on `channel` (0..16; used for the All Notes Off it adds).
    pub fn new(
        consumer: rtrb::Consumer<Scheduled>,
        shared: Arc<SchedulerShared>,
        channel: u8,
    ) -> Dispatcher {
        crate::rt::time::init();
        let generation = shared.generation.load(Ordering::Acquire);
        Dispatcher {
            consumer,
            shared,
            channel: channel & 15,
            sounding: [0; 128],
            generation,
            muted: false,
        }
    }

    /// The controls and counters it shares with the other threads.
    pub fn shared(&self) -> &SchedulerShared {
        &self.shared
    }

    /// Applies a cancel (new generation) and mute.
    fn apply_controls(&mut self, sink: &mut impl MidiSend) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.release(true, sink);
        }
        let muted = self.shared.mute.load(Ordering::Acquire);
        if muted && !self.muted {
            self.release(false, sink);
        }
        self.muted = muted;
    }

    /// The front of the ring, dropping one event of a cancelled generation.
    fn next(&mut self) -> Next {
        let Ok(next) = self.consumer.peek().copied() else {
            return Next::Empty;
        };
        if next.generation == self.generation {
            return Next::Event(next);
        }
        // Pushed after a cancel that happened since the controls were applied: apply the
        // cancel first and keep the event.
        if next.generation == self.shared.generation.load(Ordering::Acquire) {
            return Next::Pending;
        }
        let _ = self.consumer.pop();
        self.shared.cancelled.fetch_add(1, Ordering::Relaxed);
        Next::Dropped
    }

    /// Applies the controls, then sends every event due before `until_us` (on the process
    /// clock), in order, and returns. Does not sleep, spin, allocate or lock: this is the
    /// body of a period-driven output, called once per period with `until_us` the end of the
    /// period, and `sink` placing each message at its due time inside the period.
    pub fn deliver_until(&mut self, until_us: u64, sink: &mut impl MidiSend) {
        self.apply_controls(sink);
        // Bounded: each pass pops an event, except for a cancel applied at most once more
        // (a further one waits for the next period).
        let mut reapplied = false;
        loop {
            match self.next() {
                Next::Empty => return,
                Next::Dropped => {}
                Next::Pending if reapplied => return,
                Next::Pending => {
                    self.apply_controls(sink);
                    reapplied = true;
                }
                Next::Event(event) if event.time_us >= until_us => return,
                Next::Event(event) => {
                    let _ = self.consumer.pop();
                    self.deliver(&event, sink);
                }
            }
        }
    }

    fn deliver(&mut self, event: &Scheduled, sink: &mut impl MidiSend) {
        let bytes = event.bytes();
        match classify(bytes) {
            Note::On(key) => {
                if self.muted {
                    self.shared.muted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                self.sounding[key] = self.sounding[key].saturating_add(1);
                self.shared.notes_out.fetch_add(1, Ordering::Relaxed);
            }
            Note::Off(key) => {
                // A note that was muted or already stopped has nothing to stop.
                if self.sounding[key] == 0 {
                    return;
                }
                self.sounding[key] -= 1;
            }
            Note::Other => {}
        }
        if now_us() > event.time_us + 1_000 {
            self.shared.late.fetch_add(1, Ordering::Relaxed);
        }
        self.send(bytes, event.time_us, sink);
    }

    fn send(&mut self, bytes: &[u8], due_us: u64, sink: &mut impl MidiSend) {
        if sink.send(bytes, due_us) {
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a note-off for every sounding note, and All Notes Off when `all_off`.
    fn release(&mut self, all_off: bool, sink: &mut impl MidiSend) {
        let now = now_us();
        for key in 0..128u8 {
            for _ in 0..std::mem::take(&mut self.sounding[key as usize]) {
                self.send(&[0x80 | self.channel, key, 0], now, sink);
            }
        }
        if all_off {
            self.send(&[0xB0 | self.channel, 123, 0], now, sink);
        }
    }

    /// Stops every sounding note and sends All Notes Off (on exit).
    pub fn finish(&mut self, sink: &mut impl MidiSend) {
        self.release(true, sink);
    }

    /// Notes sounding now (note-ons sent and not stopped).
    pub fn sounding(&self) -> usize {
        self.sounding.iter().map(|n| *n as usize).sum()
    }
}

/// The scheduler thread's loop: a [`Dispatcher`] driven by the process clock, sending
/// through its own sink.
pub struct Scheduler<S: MidiSend> {
    dispatcher: Dispatcher,
    sink: S,
}

impl<S: MidiSend> Scheduler<S> {
    /// A scheduler sending on `channel` (0..16; used for the All Notes Off it adds).
    pub fn new(
        consumer: rtrb::Consumer<Scheduled>,
        sink: S,
        shared: Arc<SchedulerShared>,
        channel: u8,
    ) -> Scheduler<S> {
        Scheduler {
            dispatcher: Dispatcher::new(consumer, shared, channel),
            sink,
        }
    }

    /// Runs until [`SchedulerShared::stop`] is set, then stops every sounding note and
    /// returns the sink.
    pub fn run(mut self) -> S {
        while !self.dispatcher.shared.stop.load(Ordering::Acquire) {
            self.step();
        }
        self.dispatcher.finish(&mut self.sink);
        self.sink
    }

    /// One pass: applies controls, then sends the next event if it is due (spinning for the
    /// last [`SPIN_US`]) or sleeps a little. Never blocks for longer than 2 ms.
    pub fn step(&mut self) {
        let d = &mut self.dispatcher;
        d.apply_controls(&mut self.sink);
        let next = match d.next() {
            Next::Empty => {
                std::thread::sleep(Duration::from_micros(500));
                return;
            }
            Next::Dropped | Next::Pending => return,
            Next::Event(next) => next,
        };
        let now = now_us();
        if next.time_us > now + SPIN_US {
            let wait = (next.time_us - now - SPIN_US).min(MAX_SLEEP_US);
            std::thread::sleep(Duration::from_micros(wait));
            return;
        }
        while now_us() < next.time_us {
            std::hint::spin_loop();
        }
        let _ = d.consumer.pop();
        d.deliver(&next, &mut self.sink);
    }

    /// Notes sounding now (note-ons sent and not stopped).
    pub fn sounding(&self) -> usize {
        self.dispatcher.sounding()
    }
}

enum Note {
    On(usize),
    Off(usize),
    Other,
}

fn classify(bytes: &[u8]) -> Note {
    match bytes {
        [status, key, vel] if status & 0xF0 == 0x90 && *vel > 0 => Note::On(*key as usize & 127),
        [status, key, _] if status & 0xF0 == 0x90 || status & 0xF0 == 0x80 => {
            Note::Off(*key as usize & 127)
        }
        _ => Note::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<(Vec<u8>, u64, u64)>);

    impl MidiSend for Recorder {
        fn send(&mut self, message: &[u8], due_us: u64) -> bool {
            self.0.push((message.to_vec(), due_us, now_us()));
            true
        }
    }

    fn setup(
        n: usize,
    ) -> (
        rtrb::Producer<Scheduled>,
        Scheduler<Recorder>,
        Arc<SchedulerShared>,
    ) {
        let (producer, consumer) = rtrb::RingBuffer::new(n);
        let shared = Arc::new(SchedulerShared::default());
        let s = Scheduler::new(consumer, Recorder::default(), shared.clone(), 2);
        (producer, s, shared)
    }

    fn run_for(s: &mut Scheduler<Recorder>, ms: u64) {
        let end = now_us() + ms * 1000;
        while now_us() < end {
            s.step();
        }
    }

    #[test]
    fn events_go_out_at_their_time_in_order() {
        let (mut p, mut s, _shared) = setup(16);
        let t0 = now_us() + 5_000;
        for (i, key) in [60u8, 62, 64].iter().enumerate() {
            let t = t0 + i as u64 * 3_000;
            p.push(Scheduled::new(t, 0, &[0x92, *key, 100]).unwrap())
                .unwrap();
            p.push(Scheduled::new(t + 1_000, 0, &[0x82, *key, 0]).unwrap())
                .unwrap();
        }
        run_for(&mut s, 20);
        let sent = &s.sink.0;
        assert_eq!(sent.len(), 6);
        for (bytes, due, at) in sent {
            assert!(at >= due, "{bytes:?} sent before its time");
        }
        assert_eq!(sent[0].0, vec![0x92, 60, 100]);
        assert_eq!(sent[5].0, vec![0x82, 64, 0]);
        assert_eq!(s.sounding(), 0);
    }

    #[test]
    fn cancel_drops_queued_events_and_stops_sounding_notes() {
        let (mut p, mut s, shared) = setup(16);
        let now = now_us();
        p.push(Scheduled::new(now, 0, &[0x92, 60, 100]).unwrap())
            .unwrap();
        p.push(Scheduled::new(now, 0, &[0x92, 60, 90]).unwrap())
            .unwrap();
        p.push(Scheduled::new(now + 50_000, 0, &[0x82, 60, 0]).unwrap())
            .unwrap();
        run_for(&mut s, 3);
        assert_eq!(s.sounding(), 2);
        let g = shared.cancel();
        assert_eq!(g, 1);
        p.push(Scheduled::new(now_us(), g, &[0x92, 67, 80]).unwrap())
            .unwrap();
        run_for(&mut s, 3);
        let sent: Vec<Vec<u8>> = s.sink.0.iter().map(|e| e.0.clone()).collect();
        assert_eq!(
            sent,
            vec![
                vec![0x92, 60, 100],
                vec![0x92, 60, 90],
                vec![0x82, 60, 0],
                vec![0x82, 60, 0],
                vec![0xB2, 123, 0],
                vec![0x92, 67, 80],
            ]
        );
        assert_eq!(shared.cancelled.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn mute_stops_notes_and_holds_back_note_ons_and_their_offs() {
        let (mut p, mut s, shared) = setup(16);
        let now = now_us();
        p.push(Scheduled::new(now, 0, &[0x92, 60, 100]).unwrap())
            .unwrap();
        run_for(&mut s, 2);
        shared.mute.store(true, Ordering::Release);
        p.push(Scheduled::new(now, 0, &[0x92, 62, 100]).unwrap())
            .unwrap();
        p.push(Scheduled::new(now, 0, &[0x82, 62, 0]).unwrap())
            .unwrap();
        p.push(Scheduled::new(now, 0, &[0x82, 60, 0]).unwrap())
            .unwrap();
        run_for(&mut s, 3);
        shared.stop.store(true, Ordering::Release);
        let sink = s.run();
        let sent: Vec<Vec<u8>> = sink.0.iter().map(|e| e.0.clone()).collect();
        assert_eq!(
            sent,
            vec![vec![0x92, 60, 100], vec![0x82, 60, 0], vec![0xB2, 123, 0]]
        );
        assert_eq!(shared.muted.load(Ordering::Relaxed), 1);
    }
}
